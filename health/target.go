package health

import (
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

// Targets returns the current peers. The daemon wires it to the peer set;
// the prober calls it once per interval and notices changed entries itself.
type Targets func() []Target

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
