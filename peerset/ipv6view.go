package peerset

import (
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
)

// The IPv6 data plane is a second Set, fed the IPv6 view of every lease:
// the same policy (length, inside the network, not ours, no overlap,
// usable unicast underlay address that is none of ours) applied to the
// lease's IPv6 fields. IPv6View is that view; NewIPv6Feed turns the lease
// manager's calls into it; Tee gives one lease manager both Sets.

// IPv6View is the lease as the IPv6 Set sees it: Subnet is the lease's
// IPv6Subnet, PublicIP its PublicIPv6, BackendData its BackendV6Data (the
// IPv6 VTEP MAC). Same-site detection is IPv4 only, so the private
// address and key are dropped. ok is false for a lease without an IPv6
// subnet.
func IPv6View(l subnet.Lease) (subnet.Lease, bool) {
	if !l.IPv6Subnet.IsValid() {
		return subnet.Lease{}, false
	}
	v := subnet.Lease{Subnet: l.IPv6Subnet, Expiration: l.Expiration, Created: l.Created, Unreadable: l.Unreadable}
	v.Attrs = subnet.LeaseAttrs{
		PublicIP:    l.Attrs.PublicIPv6,
		BackendType: l.Attrs.BackendType,
		BackendData: l.Attrs.BackendV6Data,
		NodeID:      l.Attrs.NodeID,
	}
	return v, true
}

// IPv6Feed is a subnet.PeerSink that passes the IPv6 view of every lease
// to the IPv6 Set. It remembers each lease's IPv6 subnet by its IPv4
// subnet, so that a lease whose IPv6 subnet changes or goes under the
// same IPv4 subnet (a Node's podCIDRs in kube mode) withdraws the old one.
// Its calls must come from one goroutine at a time (the lease manager's).
type IPv6Feed struct {
	next subnet.PeerSink
	// v6of maps a dual-stack lease's IPv4 subnet to the IPv6 subnet last
	// passed on for it.
	v6of map[netip.Prefix]netip.Prefix
}

// NewIPv6Feed returns the feed of next (the IPv6 Set).
func NewIPv6Feed(next subnet.PeerSink) *IPv6Feed {
	return &IPv6Feed{next: next, v6of: map[netip.Prefix]netip.Prefix{}}
}

// ReplacePeers passes the IPv6 view of the complete set.
func (f *IPv6Feed) ReplacePeers(leases []subnet.Lease) {
	out := make([]subnet.Lease, 0, len(leases))
	clear(f.v6of)
	for i := range leases {
		v, ok := IPv6View(leases[i])
		if !ok {
			continue
		}
		if s := leases[i].Subnet; s.IsValid() {
			f.v6of[s] = v.Subnet
		}
		out = append(out, v)
	}
	f.next.ReplacePeers(out)
}

// AddEarlyPeers passes the IPv6 view of a first list's early leases
// (subnet.EarlyPeerSink) when the IPv6 Set takes them; the snapshot that
// follows supersedes them, so nothing is remembered.
func (f *IPv6Feed) AddEarlyPeers(leases []subnet.Lease) {
	next, ok := f.next.(subnet.EarlyPeerSink)
	if !ok {
		return
	}
	out := make([]subnet.Lease, 0, len(leases))
	for i := range leases {
		if v, ok := IPv6View(leases[i]); ok {
			out = append(out, v)
		}
	}
	if len(out) > 0 {
		next.AddEarlyPeers(out)
	}
}

// UpdatePeers passes the IPv6 view of the changes; a lease that lost or
// changed its IPv6 subnet removes the old one.
func (f *IPv6Feed) UpdatePeers(events []subnet.Event) {
	var out []subnet.Event
	for i := range events {
		out = f.translate(&events[i], out)
	}
	if len(out) > 0 {
		f.next.UpdatePeers(out)
	}
}

func (f *IPv6Feed) translate(ev *subnet.Event, out []subnet.Event) []subnet.Event {
	l := &ev.Lease
	old, hadOld := netip.Prefix{}, false
	if l.Subnet.IsValid() {
		old, hadOld = f.v6of[l.Subnet]
	}
	v, ok := IPv6View(*l)
	if hadOld && (ev.Type == subnet.EventRemoved || !ok || old != v.Subnet) {
		delete(f.v6of, l.Subnet)
		out = append(out, subnet.Event{Type: subnet.EventRemoved, Lease: subnet.Lease{Subnet: old}})
		if old == v.Subnet {
			return out // the removal of this very subnet
		}
	}
	if !ok {
		return out
	}
	if ev.Type != subnet.EventRemoved && l.Subnet.IsValid() {
		f.v6of[l.Subnet] = v.Subnet
	}
	return append(out, subnet.Event{Type: ev.Type, Lease: v})
}

// Tee is a subnet.PeerSink that gives every call to each sink in order.
// A sink that keeps the ReplacePeers slice (a Set) must come last: the
// others only read it during the call.
type Tee []subnet.PeerSink

// ReplacePeers implements subnet.PeerSink.
func (t Tee) ReplacePeers(leases []subnet.Lease) {
	for _, s := range t {
		s.ReplacePeers(leases)
	}
}

// UpdatePeers implements subnet.PeerSink.
func (t Tee) UpdatePeers(events []subnet.Event) {
	for _, s := range t {
		s.UpdatePeers(events)
	}
}

// AddEarlyPeers implements subnet.EarlyPeerSink for the sinks that do.
func (t Tee) AddEarlyPeers(leases []subnet.Lease) {
	for _, s := range t {
		if e, ok := s.(subnet.EarlyPeerSink); ok {
			e.AddEarlyPeers(leases)
		}
	}
}

var (
	_ subnet.EarlyPeerSink = Tee(nil)
	_ subnet.EarlyPeerSink = (*IPv6Feed)(nil)
)
