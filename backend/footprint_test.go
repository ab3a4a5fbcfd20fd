package backend

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestPeerStateLayout guards the size of what the reconciler holds per
// peer (at 100,000 peers every byte is 100 kB): the peer itself, and the
// desired neighbour and FDB claims, which point at their owner instead of
// copying its MAC and destination, and the route, nexthop and neighbour
// tables' keys and values, which hold addresses as pointer-free 16 bytes.
func TestPeerStateLayout(t *testing.T) {
	tests := []struct {
		name string
		size uintptr
		max  uintptr
	}{
		{"peer", unsafe.Sizeof(peer{}), 112},
		{"claimed (desired neighbour or FDB entry)", unsafe.Sizeof(claimed{}), 16},
		{"routeKey", unsafe.Sizeof(routeKey{}), 24},
		{"believedRoute", unsafe.Sizeof(believedRoute{}), 28},
		{"believedNexthop", unsafe.Sizeof(believedNexthop{}), 24},
		{"neighbour key", unsafe.Sizeof(addr16{}), 16},
	}
	for _, tc := range tests {
		if tc.size > tc.max {
			t.Errorf("%s is %d bytes, want at most %d", tc.name, tc.size, tc.max)
		}
	}
}

// TestCompactKeysRoundTrip: the compact address and route key give back
// the address and prefix they were made from, for both families, and no
// address for none.
func TestCompactKeysRoundTrip(t *testing.T) {
	tests := []struct {
		prefix   string
		priority int
	}{
		{"10.244.1.0/24", 0},
		{"10.0.0.128/25", 50},
		{"0.0.0.0/8", 0},
		{"fd00:10:244:1::/64", 0},
		{"2001:db8::/32", 4294967295},
	}
	for _, tc := range tests {
		p := netip.MustParsePrefix(tc.prefix)
		k := routeKeyOf(p, tc.priority)
		if k.dst() != p || k.priority() != tc.priority {
			t.Errorf("routeKeyOf(%s, %d) gives back %s metric %d", p, tc.priority, k.dst(), k.priority())
		}
		if a := addr16Of(p.Addr()).addr(); a != p.Addr() {
			t.Errorf("addr16 of %s gives back %s", p.Addr(), a)
		}
		if routeKeyOf(p, tc.priority) != k {
			t.Errorf("two keys of %s differ", p)
		}
	}
	if a := addr16Of(netip.Addr{}).addr(); a.IsValid() {
		t.Errorf("no address gives back %s", a)
	}
	if routeKeyOf(netip.MustParsePrefix("10.244.1.0/24"), 0) == routeKeyOf(netip.MustParsePrefix("10.244.1.0/25"), 0) {
		t.Error("keys of different prefix lengths are equal")
	}
}
