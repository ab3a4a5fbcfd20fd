package health

import (
	"math"
	"net/netip"
	"time"
)

// Target is one peer to probe.
type Target struct {
	Subnet netip.Prefix
	// Overlay is the peer's flannel.<VNI> address (its subnet's network
	// address): a probe to it takes the VXLAN path pods use.
	Overlay netip.Addr
	// Underlay is where the peer's VXLAN goes (its advertised address, or
	// the private one for a verified same-site peer): its responder there
	// tells a blocked VXLAN port apart from a peer that is down.
	Underlay netip.Addr
}

// Targets appends the current peers to into (of length 0) and returns it.
// The daemon wires it to the reconciler; the prober calls it once per
// interval, handing back the previous round's slice so that a round
// allocates nothing (at 100,000 peers a fresh list was 16 MB of garbage
// every round), and notices changed entries itself.
type Targets func(into []Target) []Target

// Path is the way a probe went.
type Path string

// The two probe paths.
const (
	Overlay  Path = "overlay"
	Underlay Path = "underlay"
)

// PathState is one peer's state on one path.
type PathState struct {
	// Known: probed at least once since the target appeared or changed.
	Known     bool
	Reachable bool
	// Since is when Reachable last changed (or the first result).
	Since   time.Time
	LastRTT time.Duration
	Sent    uint64
	Lost    uint64
}

// PeerState is what the prober knows of one peer.
type PeerState struct {
	Target
	Overlay  PathState
	Underlay PathState
}

// peerEntry is one peer as the prober keeps it; Peers expands it into a
// PeerState. One is held per peer (at 100,000 peers every byte is 100 kB):
// the subnet is the key of the prober's map, and a path's state takes 24
// bytes instead of PathState's 56.
type peerEntry struct {
	overlay, underlay netip.Addr
	paths             [2]pathState // Overlay, Underlay
	// round is the last round whose targets named the peer.
	round uint32
}

// target is the entry's Target.
func (e *peerEntry) target(sub netip.Prefix) Target {
	return Target{Subnet: sub, Overlay: e.overlay, Underlay: e.underlay}
}

// path is the state of one path.
func (e *peerEntry) path(p Path) *pathState {
	if p == Underlay {
		return &e.paths[1]
	}
	return &e.paths[0]
}

// pathState is a PathState kept compact: Since in Unix nanoseconds (0:
// none yet), the last RTT in microseconds (up to 71 minutes: a probe
// times out long before), the counts in 32 bits (a peer probed every
// second would take 136 years to wrap them). 24 bytes.
type pathState struct {
	since            int64
	lastRTTMicros    uint32
	sent, lost       uint32
	known, reachable bool
}

// setRTT records the last RTT.
func (s *pathState) setRTT(d time.Duration) {
	s.lastRTTMicros = uint32(min(d.Microseconds(), math.MaxUint32))
}

// public is the PathState the API shows.
func (s *pathState) public() PathState {
	out := PathState{Known: s.known, Reachable: s.reachable, LastRTT: time.Duration(s.lastRTTMicros) * time.Microsecond, Sent: uint64(s.sent), Lost: uint64(s.lost)}
	if s.since != 0 {
		out.Since = time.Unix(0, s.since)
	}
	return out
}
