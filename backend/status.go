package backend

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Status is a snapshot of the reconciler, safe to take from any goroutine.
// A harness knows all 3N entries are in the kernel when InSync is true and
// Counts.PeersProgrammed == Counts.Peers == N (then Counts.Kernel equals
// Counts.Desired).
type Status struct {
	// Synced: the first complete, error-free pass is done.
	Synced bool
	// InSync: the last pass left nothing failing or pending.
	InSync           bool
	LastPass         time.Time
	LastPassDuration time.Duration
	LastPassKind     string // "full" or "incremental"
	LastFullPass     time.Time
	// LastError is the first error of the last pass, "" if it had none.
	LastError string
	// RouteMode is the shape of peer routes in use, "onlink" or "nexthop"
	// (--route-mode), and RouteModeReason why.
	RouteMode       string
	RouteModeReason string
	Counts          StatusCounts
	// Peers, sorted by subnet.
	Peers []PeerStatus
}

// StatusCounts are the reconciler's totals.
type StatusCounts struct {
	Peers           int
	PeersProgrammed int
	// SkippedLeases are malformed peer leases (ignored ones not counted).
	SkippedLeases int
	// Desired entries for the current peers; Kernel entries of ours as
	// last read and written (stale ones included until deleted).
	Desired EntryCounts
	Kernel  EntryCounts
	// Failing entries wait for a retry.
	Failing int
	// Nexthop objects desired and in the kernel (nexthop route mode).
	DesiredNexthops, KernelNexthops int
}

// EntryCounts counts entries by kind.
type EntryCounts struct {
	Neighbours, FDB, Routes int
}

// PeerStatus is one peer as programmed.
type PeerStatus struct {
	Subnet   netip.Prefix
	PublicIP netip.Addr
	MAC      net.HardwareAddr
	// Dst is the FDB destination (or the direct route's gateway).
	Dst    netip.Addr
	Direct bool
	// Programmed: every entry of the peer is in the kernel.
	Programmed bool
	Error      string
}

// statusBoard is the mutex-guarded summary of the loop's state that Status
// reads. The peer rows are not copied here: Status reads them from the
// desired state's peers under desiredState.mu (one owner of every peer).
type statusBoard struct {
	mu      sync.Mutex
	summary Status
}

func (b *statusBoard) setPass(start time.Time, took time.Duration, full bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.summary.LastPass, b.summary.LastPassDuration = start, took
	b.summary.LastPassKind = passKindName(full)
	if full {
		b.summary.LastFullPass = start
	}
	b.summary.LastError = ""
	if err != nil {
		b.summary.LastError = err.Error()
	}
}

// flushStatus publishes the totals of the step.
func (r *Reconciler) flushStatus() {
	b := &r.board
	b.mu.Lock()
	defer b.mu.Unlock()
	b.summary.InSync = r.syncState == syncIn
	b.summary.Synced = r.everInSync
	b.summary.Counts = StatusCounts{
		Peers:           len(r.want.peers),
		PeersProgrammed: r.programmed,
		SkippedLeases:   len(r.skipped),
		Desired:         EntryCounts{Neighbours: len(r.want.neigh), FDB: len(r.want.fdb), Routes: len(r.want.peers)},
		Kernel:          EntryCounts{Neighbours: len(r.believed.neigh), FDB: len(r.believed.fdb), Routes: len(r.believed.route)},
		Failing:         r.failingLen(),
		DesiredNexthops: len(r.want.nexthop),
		KernelNexthops:  len(r.believed.nexthop),
	}
}

func (b *statusBoard) setRouteMode(mode RouteMode, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.summary.RouteMode, b.summary.RouteModeReason = string(mode), reason
}

// Status returns a snapshot; it copies the peer list (O(N)). The totals
// are those the last step published; the peer rows are read from the
// reconciler's peers as they are now, under the lock the loop takes only to
// change them (never across a kernel write), so Status never waits for a
// pass.
func (r *Reconciler) Status() Status {
	r.board.mu.Lock()
	s := r.board.summary
	r.board.mu.Unlock()
	s.Peers = r.want.peerRows()
	slices.SortFunc(s.Peers, func(a, b PeerStatus) int {
		if c := a.Subnet.Addr().Compare(b.Subnet.Addr()); c != 0 {
			return c
		}
		return a.Subnet.Bits() - b.Subnet.Bits()
	})
	return s
}

// peerRows lists the peers as Status shows them, from any goroutine.
func (d *desiredState) peerRows() []PeerStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	rows := make([]PeerStatus, 0, len(d.peers))
	for _, p := range d.peers {
		ps := PeerStatus{Subnet: p.subnet, PublicIP: p.publicIP, MAC: net.HardwareAddr(slices.Clone(p.mac[:])),
			Dst: p.dst, Direct: p.direct, Programmed: p.pending == 0}
		if p.err != nil {
			ps.Error = p.err.Error()
		}
		rows = append(rows, ps)
	}
	return rows
}

// PeerDsts calls fn with every peer's subnet and underlay destination (the
// FDB destination, or the direct route's gateway), in no order, from any
// goroutine: the health prober's targets, read from the one owner of the
// peers instead of a copy. Before the first snapshot (early peers of a
// first list only) there are none. fn must not call into the Reconciler.
func (r *Reconciler) PeerDsts(fn func(subnet netip.Prefix, dst netip.Addr)) {
	r.want.mu.Lock()
	defer r.want.mu.Unlock()
	if !r.want.snapshot {
		return
	}
	for _, p := range r.want.peers {
		fn(p.subnet, p.dst)
	}
}
