package backend

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/subnet"
)

func TestNexthopID(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		network, subnet string
		want            uint32
	}{
		{"10.244.0.0/16", "10.244.37.0/24", 0xF1000000 + 37},
		{"10.244.0.0/16", "10.244.1.16/28", 0xF1000000 + 17},
		{"10.0.0.0/8", "10.1.2.0/24", 0xF1000000 + 258},
		{"10.0.0.0/8", "10.0.0.0/24", 0xF1000000},
		// IPv6 ids have their own top byte: one id space for both families.
		{"2001:db8:1::/48", "2001:db8:1:5::/64", 0xF2000000 + 5},
		{"2001:db8::/96", "2001:db8::1:0/112", 0xF2000000 + 1},
	}
	for _, tc := range tests {
		got := nexthopID(p(tc.network), p(tc.subnet))
		if got != tc.want || !ownNexthopID(got) {
			t.Errorf("nexthopID(%s, %s) = %#x, want %#x", tc.network, tc.subnet, got, tc.want)
		}
	}
	if ownNexthopID(1) || ownNexthopID(0xF3000000) || ownNexthopID(0xF0FFFFFF) {
		t.Error("ids outside 0xF1xxxxxx and 0xF2xxxxxx are not ours")
	}
}

// TestNexthopIDCollision: a /4 network has more than 2^24 /30 subnets;
// two that share the low 24 bits of their index cannot share an id, and
// the later one keeps an onlink route.
func TestNexthopIDCollision(t *testing.T) {
	d := newDesiredState(nilLogger())
	d.network, d.nexthops = netip.MustParsePrefix("16.0.0.0/4"), true
	a := &peer{subnet: netip.MustParsePrefix("16.0.0.4/30"), mac: [6]byte{2, 1}, dst: netip.MustParseAddr("192.0.2.1")}
	b := &peer{subnet: netip.MustParsePrefix("20.0.0.4/30"), mac: [6]byte{2, 2}, dst: netip.MustParseAddr("192.0.2.2")}
	d.add(a)
	d.add(b)
	if a.nhid == 0 || b.nhid != 0 || len(d.nexthop) != 1 {
		t.Fatalf("a.nhid %#x, b.nhid %#x, %d nexthops", a.nhid, b.nhid, len(d.nexthop))
	}
	if w, _ := d.route(b.subnet); w.nhid != 0 || w.gw != b.subnet.Addr() {
		t.Fatalf("b's route %+v, want onlink via its subnet address", w)
	}
	d.remove(a)
	if len(d.nexthop) != 0 || !(*d.dirty.nexthop).has(nexthopID(d.network, a.subnet)) {
		t.Fatalf("after removing a: %d nexthops, dirty %v", len(d.nexthop), *d.dirty.nexthop)
	}
}

func TestParseRouteMode(t *testing.T) {
	for _, s := range []string{"auto", "onlink", "nexthop"} {
		if m, err := ParseRouteMode(s); err != nil || string(m) != s {
			t.Errorf("%s: %v %v", s, m, err)
		}
	}
	if _, err := ParseRouteMode("gateway"); err == nil || !strings.Contains(err.Error(), "gateway") {
		t.Errorf("bad mode: %v", err)
	}
}

// TestWantNexthops is the mode decision: the flag, kernel support, and
// auto's threshold with its way back at half of it.
func TestWantNexthops(t *testing.T) {
	tests := []struct {
		mode      RouteMode
		supported bool
		peers     int
		current   bool
		want      bool
		reason    string
	}{
		{RouteModeOnlink, true, 5000, false, false, "--route-mode=onlink"},
		{RouteModeNexthop, true, 1, false, true, "--route-mode=nexthop"},
		{RouteModeNexthop, false, 1, false, false, "--route-mode=nexthop but"},
		{RouteModeAuto, false, 5000, false, false, "--route-mode=auto but"},
		{RouteModeAuto, true, 99, false, false, "auto: 99 peers, below the threshold 100"},
		{RouteModeAuto, true, 100, false, true, "auto: 100 peers, at least the threshold 100"},
		{RouteModeAuto, true, 50, true, true, "auto: 50 peers, not below half the threshold 100"},
		{RouteModeAuto, true, 49, true, false, "auto: 49 peers, below the threshold 100"},
		{RouteModeAuto, true, 60, false, false, "auto: 60 peers, below the threshold 100"},
	}
	for _, tc := range tests {
		f := newFixture(t, func(o *ReconcilerOptions) { o.RouteMode, o.NexthopThreshold = tc.mode, 100 })
		f.r.mode.support = -1
		if tc.supported {
			f.r.mode.support = 1
		}
		for i := range tc.peers {
			f.r.want.peers[netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 256), byte(i)}), 32)] = &peer{}
		}
		f.r.want.nexthops = tc.current
		on, reason := f.r.wantNexthops()
		if on != tc.want || !strings.HasPrefix(reason(), tc.reason) {
			t.Errorf("%s, supported %v, %d peers, on %v: got %v %q, want %v %q",
				tc.mode, tc.supported, tc.peers, tc.current, on, reason(), tc.want, tc.reason)
		}
	}
}

// TestNexthopModeWithoutNexthopKernel: a Kernel that cannot write nexthop
// objects (the library handle, the fake) keeps onlink routes in nexthop
// mode, and /status says why.
func TestNexthopModeWithoutNexthopKernel(t *testing.T) {
	f := newFixture(t, func(o *ReconcilerOptions) { o.RouteMode = RouteModeNexthop })
	f.replace([]subnet.Lease{observedPeer})
	f.step()
	s := f.r.Status()
	if s.RouteMode != "onlink" || !strings.Contains(s.RouteModeReason, "cannot write nexthop objects") || !s.InSync {
		t.Fatalf("mode %q (%q), in sync %v", s.RouteMode, s.RouteModeReason, s.InSync)
	}
}

// nexthopProbeKernel answers the nexthop support check with err and
// writes nothing else of nexthops (the mode stays onlink in these tests).
type nexthopProbeKernel struct {
	Kernel
	err    error
	checks int
}

func (k *nexthopProbeKernel) nexthopSupport() error { k.checks++; return k.err }
func (k *nexthopProbeKernel) nexthopReplace(uint32, netip.Addr, int) error {
	panic("nexthop written")
}
func (k *nexthopProbeKernel) nexthopDel(uint32) error { panic("nexthop deleted") }
func (k *nexthopProbeKernel) routeReplaceNH(netip.Prefix, int, uint32) error {
	panic("nhid route written")
}

// TestNexthopSupportCheck: a kernel without nexthop objects is asked
// once and gets onlink routes for good; a check that fails otherwise is
// asked again at the next step.
func TestNexthopSupportCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		checks int
		reason string
	}{
		{"no nexthop objects", fmt.Errorf("dump nexthop objects: %w: %w", unix.EOPNOTSUPP, errNoNexthops), 1, "the kernel has no nexthop objects"},
		{"check failed", fmt.Errorf("dump nexthop objects: %w", unix.ENOBUFS), 3, "checking for nexthop objects failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var probe *nexthopProbeKernel
			f := newFixture(t, func(o *ReconcilerOptions) {
				probe = &nexthopProbeKernel{Kernel: o.Kernel, err: tc.err}
				o.Kernel, o.RouteMode = probe, RouteModeNexthop
			})
			f.replace([]subnet.Lease{observedPeer})
			for range 3 {
				f.step()
			}
			s := f.r.Status()
			if probe.checks != tc.checks || s.RouteMode != "onlink" || !strings.Contains(s.RouteModeReason, tc.reason) || !s.InSync {
				t.Fatalf("%d checks, mode %q (%q), in sync %v; want %d checks, onlink because %q",
					probe.checks, s.RouteMode, s.RouteModeReason, s.InSync, tc.checks, tc.reason)
			}
		})
	}
}
