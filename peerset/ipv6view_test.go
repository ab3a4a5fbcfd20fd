package peerset

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

var (
	testNetwork6 = netip.MustParsePrefix("fd00:10:244::/56")
	ownSubnet6   = netip.MustParsePrefix("fd00:10:244:99::/64")
)

// dualLease is lease(k) with IPv6Subnet fd00:10:244:<k>::/64, PublicIPv6
// 2001:db8::<k> and an IPv6 VTEP MAC 06:…:<k>.
func dualLease(k int) subnet.Lease {
	l := lease(k, "192.0.2.250")
	l.Attrs.SameSiteKey = make([]byte, 32)
	l.IPv6Subnet = netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%x::/64", k))
	l.Attrs.PublicIPv6 = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", k))
	l.Attrs.BackendV6Data = []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":"06:00:00:00:00:%02x"}`, k))
	return l
}

func mac6(k int) [6]byte { return [6]byte{6, 0, 0, 0, 0, byte(k)} }

// newFixture6 is an IPv6 Set fed through an IPv6Feed.
func newFixture6(t *testing.T, edit ...func(*Options)) (*fixture, *IPv6Feed) {
	t.Helper()
	f := newFixture(t, append([]func(*Options){func(o *Options) {
		o.Network, o.OwnSubnet, o.SubnetLen = testNetwork6, ownSubnet6, 64
		o.LocalAddrs = []netip.Addr{netip.MustParseAddr("2001:db8::99")}
	}}, edit...)...)
	return f, NewIPv6Feed(f.s)
}

func (f *fixture) step6(feed *IPv6Feed, replace []subnet.Lease, events ...subnet.Event) {
	if replace != nil {
		feed.ReplacePeers(replace)
	}
	if len(events) > 0 {
		feed.UpdatePeers(events)
	}
	f.s.Step()
}

func TestIPv6ViewOfALease(t *testing.T) {
	v, ok := IPv6View(dualLease(5))
	switch {
	case !ok:
		t.Fatal("a dual-stack lease has no IPv6 view")
	case v.Subnet.String() != "fd00:10:244:5::/64" || v.IPv6Subnet.IsValid():
		t.Errorf("view subnets %s / %s", v.Subnet, v.IPv6Subnet)
	case v.Attrs.PublicIP.String() != "2001:db8::5" || v.Attrs.PublicIPv6.IsValid():
		t.Errorf("view addresses %s / %s", v.Attrs.PublicIP, v.Attrs.PublicIPv6)
	case string(v.Attrs.BackendData) != `{"VNI":1,"VtepMAC":"06:00:00:00:00:05"}` || v.Attrs.BackendV6Data != nil:
		t.Errorf("view backend data %s / %s", v.Attrs.BackendData, v.Attrs.BackendV6Data)
	case v.Attrs.PrivateIP.IsValid() || v.Attrs.SameSiteKey != nil:
		t.Errorf("view keeps same-site fields %s %x", v.Attrs.PrivateIP, v.Attrs.SameSiteKey)
	}
	if _, ok := IPv6View(lease(5, "")); ok {
		t.Error("an IPv4-only lease has an IPv6 view")
	}
}

func TestIPv6SetProgramsTheIPv6Fields(t *testing.T) {
	f, feed := newFixture6(t)
	f.step6(feed, []subnet.Lease{dualLease(1), dualLease(2), lease(3, "")})
	got := f.rec.current()
	if len(got) != 2 {
		t.Fatalf("peers %v, want the two dual-stack ones", got)
	}
	p := got[netip.MustParsePrefix("fd00:10:244:1::/64")]
	if p.PublicIP.String() != "2001:db8::1" || p.Dst.String() != "2001:db8::1" || p.MAC != mac6(1) || p.Keep != "" {
		t.Errorf("peer 1: %+v", p)
	}
	if len(f.rec.candRepl) != 1 || len(f.rec.candRepl[0]) != 0 {
		t.Errorf("IPv6 same-site candidates %v, want none", f.rec.candRepl)
	}
	if a := f.rec.lastAddrs(); len(a) != 2 || a[0] != "2001:db8::1" || a[1] != "2001:db8::2" {
		t.Errorf("peer filter addresses %v", a)
	}
}

// TestIPv6SetPolicy: each of the lease policy's checks, on IPv6 fields.
func TestIPv6SetPolicy(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*subnet.Lease)
		reason string // "" : the peer is admitted
	}{
		{"good", func(*subnet.Lease) {}, ""},
		{"wrong length", func(l *subnet.Lease) { l.IPv6Subnet = netip.MustParsePrefix("fd00:10:244:7::/80") }, ReasonSubnetLength},
		{"outside the network", func(l *subnet.Lease) { l.IPv6Subnet = netip.MustParsePrefix("fd00:99::/64") }, ReasonOutsideNetwork},
		{"our own subnet", func(l *subnet.Lease) { l.IPv6Subnet = ownSubnet6 }, "ignored"},
		{"overlaps ours", func(l *subnet.Lease) { l.IPv6Subnet = netip.MustParsePrefix("fd00:10:244:99::/72") }, ReasonOverlapsOwnSubnet},
		{"no PublicIPv6", func(l *subnet.Lease) { l.Attrs.PublicIPv6 = netip.Addr{} }, ReasonMalformed},
		{"link-local PublicIPv6", func(l *subnet.Lease) { l.Attrs.PublicIPv6 = netip.MustParseAddr("fe80::1") }, ReasonPublicIPUnusable},
		{"multicast PublicIPv6", func(l *subnet.Lease) { l.Attrs.PublicIPv6 = netip.MustParseAddr("ff02::1") }, ReasonPublicIPUnusable},
		{"PublicIPv6 is ours", func(l *subnet.Lease) { l.Attrs.PublicIPv6 = netip.MustParseAddr("2001:db8::99") }, ReasonPublicIPOurs},
		{"bad BackendV6Data", func(l *subnet.Lease) { l.Attrs.BackendV6Data = []byte(`{"VtepMAC":"x"}`) }, ReasonMalformed},
		{"no BackendV6Data", func(l *subnet.Lease) { l.Attrs.BackendV6Data = nil }, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, feed := newFixture6(t, func(o *Options) { o.SubnetLen = 64 })
			l := dualLease(7)
			tt.edit(&l)
			f.step6(feed, []subnet.Lease{l})
			p, ok := f.rec.current()[l.IPv6Subnet]
			switch {
			case tt.reason == "":
				if !ok || p.Keep != "" || p.MAC != mac6(7) {
					t.Fatalf("peer %+v (present %t), want it programmed", p, ok)
				}
			case tt.reason == "ignored":
				if ok {
					t.Fatalf("our own subnet became a peer: %+v", p)
				}
			default:
				if got := f.refusedMetric(t, tt.reason); got != 1 {
					t.Fatalf("refused{%s} = %v; refused %+v", tt.reason, got, f.s.Refused())
				}
				if ok && p.Keep == "" {
					t.Fatalf("refused lease programmed: %+v", p)
				}
			}
		})
	}
}

// TestIPv6SetOverlap: the older of two overlapping IPv6 subnets wins.
func TestIPv6SetOverlap(t *testing.T) {
	f, feed := newFixture6(t, func(o *Options) { o.SubnetLen = 0 })
	older, newer := dualLease(1), dualLease(2)
	older.Created, newer.Created = 1, 2
	newer.IPv6Subnet = netip.MustParsePrefix("fd00:10:244:1:8000::/65")
	f.step6(feed, []subnet.Lease{older, newer})
	got := f.rec.current()
	if _, ok := got[newer.IPv6Subnet]; ok || len(got) != 1 {
		t.Fatalf("peers %v, want only the older", got)
	}
	if f.refusedMetric(t, ReasonOverlapsPeer) != 1 {
		t.Fatalf("refused %+v", f.s.Refused())
	}
}

// TestIPv6FeedEvents: changes of a lease's IPv6 fields reach the IPv6 Set
// as changes of its IPv6 subnet; a lease that loses or changes its IPv6
// subnet under the same IPv4 subnet (kube mode) withdraws the old one.
func TestIPv6FeedEvents(t *testing.T) {
	f, feed := newFixture6(t)
	a, b := dualLease(1), dualLease(2)
	f.step6(feed, []subnet.Lease{a, b})

	moved := a
	moved.Attrs.BackendV6Data = []byte(`{"VNI":1,"VtepMAC":"06:00:00:00:00:aa"}`)
	f.step6(feed, nil, added(moved))
	if p := f.rec.current()[a.IPv6Subnet]; p.MAC != [6]byte{6, 0, 0, 0, 0, 0xaa} {
		t.Fatalf("MAC change not passed: %+v", p)
	}

	renumbered := moved
	renumbered.IPv6Subnet = netip.MustParsePrefix("fd00:10:244:21::/64")
	f.step6(feed, nil, added(renumbered))
	got := f.rec.current()
	if _, ok := got[a.IPv6Subnet]; ok {
		t.Fatalf("old IPv6 subnet kept after renumbering: %v", got)
	}
	if _, ok := got[renumbered.IPv6Subnet]; !ok {
		t.Fatalf("new IPv6 subnet missing: %v", got)
	}

	v4only := b
	v4only.IPv6Subnet = netip.Prefix{}
	f.step6(feed, nil, added(v4only))
	if _, ok := f.rec.current()[b.IPv6Subnet]; ok {
		t.Fatal("IPv6 subnet kept after the lease lost it")
	}

	f.step6(feed, nil, removed(renumbered))
	if got := f.rec.current(); len(got) != 0 {
		t.Fatalf("peers after removals: %v", got)
	}

	// IPv6-only leases (no IPv4 subnet) come and go by their IPv6 subnet.
	only6 := dualLease(3)
	only6.Subnet = netip.Prefix{}
	f.step6(feed, nil, added(only6))
	if _, ok := f.rec.current()[only6.IPv6Subnet]; !ok {
		t.Fatal("IPv6-only lease not programmed")
	}
	f.step6(feed, nil, removed(only6))
	if got := f.rec.current(); len(got) != 0 {
		t.Fatalf("peers after the IPv6-only removal: %v", got)
	}
}

func TestTeeGivesEveryCallToEach(t *testing.T) {
	f4 := newFixture(t)
	f6, feed := newFixture6(t)
	tee := Tee{feed, f4.s}
	tee.ReplacePeers([]subnet.Lease{dualLease(1)})
	tee.UpdatePeers([]subnet.Event{added(dualLease(2))})
	f4.s.Step()
	f6.s.Step()
	if len(f4.rec.current()) != 2 || len(f6.rec.current()) != 2 {
		t.Fatalf("IPv4 peers %v, IPv6 peers %v", f4.rec.current(), f6.rec.current())
	}
}

func TestEarlyPeersReachBothSets(t *testing.T) {
	f4 := newFixture(t)
	f6, feed := newFixture6(t)
	tee := Tee{feed, f4.s}
	tee.AddEarlyPeers([]subnet.Lease{dualLease(1), lease(2, "")})
	f4.s.Step()
	f6.s.Step()
	if len(f4.rec.early) != 1 || len(f4.rec.early[0]) != 2 {
		t.Fatalf("IPv4 early deliveries %+v, want one of 2 peers", f4.rec.early)
	}
	if len(f6.rec.early) != 1 || len(f6.rec.early[0]) != 1 || f6.rec.early[0][0].Peer.Subnet != dualLease(1).IPv6Subnet {
		t.Fatalf("IPv6 early deliveries %+v, want dual-stack lease 1's IPv6 subnet", f6.rec.early)
	}
	tee.ReplacePeers([]subnet.Lease{dualLease(1), lease(2, "")})
	f4.s.Step()
	f6.s.Step()
	if len(f4.rec.current()) != 2 || len(f6.rec.current()) != 1 {
		t.Fatalf("IPv4 peers %v, IPv6 peers %v", f4.rec.current(), f6.rec.current())
	}
}
