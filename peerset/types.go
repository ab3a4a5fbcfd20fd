package peerset

import (
	"net"
	"net/netip"
)

// Peer is one remote node as the reconciler programs it.
type Peer struct {
	Subnet   netip.Prefix
	PublicIP netip.Addr
	MAC      [6]byte
	// Dst is the underlay destination of the peer's VXLAN: its verified
	// private address, else its PublicIP.
	Dst netip.Addr
	// Keep is non-empty when the subnet's lease exists but cannot be used
	// (unreadable or malformed): the reconciler keeps what it has for the
	// subnet as it is; Keep says why. The other fields are then empty.
	Keep string
}

// MACString formats the VTEP MAC.
func (p Peer) MACString() string { return net.HardwareAddr(p.MAC[:]).String() }

// Change is one change to the reconciler's peer set: a new or changed
// peer, a subnet to keep as it is, or a removal (Removed; only Subnet set).
type Change struct {
	Peer    Peer
	Removed bool
}

// Sink receives the decoded peer set (the backend's reconciler). Calls
// come from the owner's goroutine and must not block.
type Sink interface {
	// ReplacePeers delivers the complete peer set: after every snapshot of
	// the lease manager. The slice is the sink's to keep.
	ReplacePeers(peers []Peer)
	// UpdatePeers delivers changes since the previous call.
	UpdatePeers(changes []Change)
}

// EarlySink is a Sink that also takes the peers of the lease manager's
// first list while it is still being read (subnet.EarlyPeerSink). It gets
// them as changes before the first ReplacePeers: it may program them, but
// must not remove anything else before that snapshot, which supersedes
// them.
type EarlySink interface {
	Sink
	UpdateEarlyPeers(changes []Change)
}

// Candidate is a peer that advertises a private address (OverlaydPrivateIP):
// what same-site detection probes and checks answers against.
type Candidate struct {
	Subnet   netip.Prefix
	Private  netip.Addr
	MAC      [6]byte
	PublicIP netip.Addr
	// Key is the lease's OverlaydKey, which signs the peer's answers;
	// all zero when the lease has none.
	Key [32]byte
}

// CandidateSink receives the same-site candidates. Calls come from the
// owner's goroutine and must not block nor call SetVerdict synchronously
// in a way that waits for the owner.
type CandidateSink interface {
	// ReplaceCandidates delivers the complete set (after every snapshot).
	ReplaceCandidates(cs []Candidate)
	// UpdateCandidates delivers new or re-announced candidates (their lease
	// was written again) and removed subnets.
	UpdateCandidates(set []Candidate, removed []netip.Prefix)
}

// Verdict is same-site detection's answer about one candidate: Private
// (with the MAC it was verified against) is proven to be the peer's, or,
// when Private is invalid, it is not (any more).
type Verdict struct {
	Subnet  netip.Prefix
	Private netip.Addr
	MAC     [6]byte
	// Key is the OverlaydKey the answer was verified with: a verdict for
	// a key the lease no longer names is stale.
	Key [32]byte
}

// AddrSink receives the addresses peers' VXLAN may come from, whenever
// the set changes (the VXLAN peer filter's feed). Calls come from the
// owner's goroutine and must not block.
type AddrSink interface {
	SetAddrs(addrs []netip.Addr)
}
