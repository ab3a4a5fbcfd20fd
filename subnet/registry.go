package subnet

import (
	"context"
	"errors"
	"time"
)

// Errors a Registry returns; callers test them with errors.Is.
var (
	// ErrConfigNotFound: <prefix>/config does not exist.
	ErrConfigNotFound = errors.New("network config not found")
	// ErrLeaseExists: an atomic create lost because the key exists.
	ErrLeaseExists = errors.New("lease already exists")
	// ErrLeaseNotFound: the lease to renew or delete does not exist.
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrHistoryLost: the watch revision/index is no longer available
	// (v3 compaction, v2 error 401 "index cleared"); re-list and diff.
	ErrHistoryLost = errors.New("watch history lost")
)

// SkippedKey is a key under <prefix>/subnets that is not a valid lease.
// It is reported, never acted upon, and never affects other leases.
type SkippedKey struct {
	Key    string
	Reason error
}

// LeaseList is a consistent snapshot of all leases.
type LeaseList struct {
	Leases   []Lease
	Skipped  []SkippedKey
	Revision int64 // watch from Revision+1 to see every later change
}

// WatchBatch is what a watch delivers: the events of one etcd response
// (malformed entries already skipped) and the revision they bring us to.
type WatchBatch struct {
	Events   []Event
	Skipped  []SkippedKey
	Revision int64
}

// Registry is the small interface the lease manager needs from etcd.
// One implementation exists per etcd API (v3, v2).
type Registry interface {
	// GetNetworkConfig returns the raw JSON at <prefix>/config.
	GetNetworkConfig(ctx context.Context) ([]byte, error)
	// ListLeases returns every lease under <prefix>/subnets.
	ListLeases(ctx context.Context) (LeaseList, error)
	// CreateLease writes a new lease (key id) atomically with the given
	// TTL and returns its expiration; ErrLeaseExists if the key is already
	// there.
	CreateLease(ctx context.Context, id LeaseID, attrs LeaseAttrs, ttl time.Duration) (time.Time, error)
	// UpdateLease rewrites an existing lease's value (key lease.ID()) and
	// restarts its TTL.
	// A reservation (no TTL) stays a reservation and the returned time is zero.
	UpdateLease(ctx context.Context, lease Lease, ttl time.Duration) (time.Time, error)
	// DeleteLease removes a lease key.
	DeleteLease(ctx context.Context, id LeaseID) error
	// WatchLeases streams changes after revision fromRevision (exclusive)
	// until ctx ends or an error; ErrHistoryLost when fromRevision is gone.
	// It closes nothing it was given; it returns when the stream breaks.
	WatchLeases(ctx context.Context, fromRevision int64, out chan<- WatchBatch) error
}

// PeerSink receives the peer lease set (the node's own lease excluded).
// Calls must not block: the backend queues and coalesces them.
type PeerSink interface {
	// ReplacePeers delivers the complete current peer set: the first
	// snapshot, and again after every re-list.
	ReplacePeers(leases []Lease)
	// UpdatePeers delivers changes since the previous call. A removal
	// carries the last attributes seen for that subnet.
	UpdatePeers(events []Event)
}

// EarlyPeerSink is a PeerSink that also takes the peers of a first list
// while it is still being read, so that programming them overlaps the
// rest of the list. They are provisional: the ReplacePeers that follows
// with the complete list supersedes them (a subnet not in it goes). A
// lease manager sends them only before its first ReplacePeers, only as
// additions, and only when the sink implements this interface.
type EarlyPeerSink interface {
	PeerSink
	AddEarlyPeers(leases []Lease)
}
