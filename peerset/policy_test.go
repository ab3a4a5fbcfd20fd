package peerset

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// local is this node's addresses in the policy tests.
var (
	bindAddr   = netip.MustParseAddr("198.51.100.99")
	publicAddr = netip.MustParseAddr("203.0.113.99")
)

func policyFixture(t *testing.T) *fixture {
	return newFixture(t, func(o *Options) {
		o.SubnetLen = 24
		o.LocalAddrs = []netip.Addr{bindAddr, publicAddr}
	})
}

// Each refused lease is refused alone: the other peers are untouched, the
// refusal is logged once with the key, field and value, counted by
// reason and listed.
func TestLeasePolicy(t *testing.T) {
	with := func(k int, edit func(*subnet.Lease)) subnet.Lease { l := lease(k, ""); edit(&l); return l }
	prefix := func(s string) func(*subnet.Lease) {
		return func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix(s) }
	}
	public := func(s string) func(*subnet.Lease) {
		return func(l *subnet.Lease) { l.Attrs.PublicIP = netip.MustParseAddr(s) }
	}
	private := func(s string) func(*subnet.Lease) {
		return func(l *subnet.Lease) { l.Attrs.PrivateIP = netip.MustParseAddr(s) }
	}
	tests := []struct {
		name   string
		lease  subnet.Lease
		reason string
		field  string
		value  string
		kept   bool
	}{
		{"inside our subnet", with(5, prefix("10.244.99.0/25")), ReasonOverlapsOwnSubnet, "Subnet", "10.244.99.0/25", false},
		{"around our subnet", with(5, prefix("10.244.96.0/22")), ReasonOverlapsOwnSubnet, "Subnet", "10.244.96.0/22", false},
		{"too long", with(5, prefix("10.244.5.0/25")), ReasonSubnetLength, "Subnet", "10.244.5.0/25", false},
		{"too short", with(5, prefix("10.244.0.0/20")), ReasonSubnetLength, "Subnet", "10.244.0.0/20", false},
		{"outside the network", with(5, prefix("10.9.5.0/24")), ReasonOutsideNetwork, "Subnet", "10.9.5.0/24", true},
		{"the whole network", with(5, prefix("10.244.0.0/16")), ReasonOutsideNetwork, "Subnet", "10.244.0.0/16", true},
		{"PublicIP is our advertised address", with(5, public("203.0.113.99")), ReasonPublicIPOurs, "PublicIP", "203.0.113.99", true},
		{"PublicIP is our bind address", with(5, public("198.51.100.99")), ReasonPublicIPOurs, "PublicIP", "198.51.100.99", true},
		{"PublicIP loopback", with(5, public("127.0.0.1")), ReasonPublicIPUnusable, "PublicIP", "127.0.0.1", true},
		{"PublicIP multicast", with(5, public("239.1.2.3")), ReasonPublicIPUnusable, "PublicIP", "239.1.2.3", true},
		{"PublicIP broadcast", with(5, public("255.255.255.255")), ReasonPublicIPUnusable, "PublicIP", "255.255.255.255", true},
		{"PublicIP unspecified", with(5, public("0.0.0.0")), ReasonPublicIPUnusable, "PublicIP", "0.0.0.0", true},
		{"PublicIP link-local", with(5, public("169.254.1.1")), ReasonPublicIPUnusable, "PublicIP", "169.254.1.1", true},
		{"PublicIP IPv6 loopback", with(5, public("::1")), ReasonPublicIPUnusable, "PublicIP", "::1", true},
		{"private address multicast", with(5, private("224.0.0.1")), ReasonPrivateIPUnusable, "OverlaydPrivateIP", "224.0.0.1", true},
		{"private address loopback", with(5, private("127.0.0.2")), ReasonPrivateIPUnusable, "OverlaydPrivateIP", "127.0.0.2", true},
		{"bad VtepMAC", malformed(lease(5, "")), ReasonMalformed, "BackendData", `{"VtepMAC":"not a mac"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := policyFixture(t)
			good := lease(1, "198.51.100.1")
			f.replace(good, lease(2, ""))
			before := f.rec.current()
			f.update(added(tt.lease), added(tt.lease))
			after := f.rec.current()
			for _, sub := range []netip.Prefix{good.Subnet, lease(2, "").Subnet} {
				if after[sub] != before[sub] {
					t.Errorf("peer %s changed: %+v → %+v", sub, before[sub], after[sub])
				}
			}
			p, listed := after[tt.lease.Subnet]
			switch {
			case tt.kept && (!listed || p.Keep == ""):
				t.Errorf("reconciler has %+v (listed %v), want the subnet kept as it is", p, listed)
			case !tt.kept && listed:
				t.Errorf("reconciler has %+v, want no peer for a refused subnet", p)
			}
			refused := f.s.Refused()
			if len(refused) != 1 || refused[0].Subnet != tt.lease.Subnet || refused[0].Reason != tt.reason ||
				refused[0].Field != tt.field || refused[0].Value != tt.value || refused[0].Kept != tt.kept {
				t.Errorf("Refused() = %+v, want %s %s=%s", refused, tt.reason, tt.field, tt.value)
			}
			if v := f.refusedMetric(t, tt.reason); v != 1 {
				t.Errorf("overlayd_peer_leases_refused{reason=%q} = %v, want 1", tt.reason, v)
			}
			lines := f.lines("WARN", subnet.KeyName(tt.lease.Subnet))
			if len(lines) != 1 || !strings.Contains(lines[0], "field="+tt.field) || !strings.Contains(lines[0], "value=") {
				t.Errorf("warnings %q, want one naming the key, the field and the value", lines)
			}
			// The key goes: so does the refusal.
			f.update(removed(tt.lease))
			if len(f.s.Refused()) != 0 || f.refusedMetric(t, tt.reason) != 0 {
				t.Errorf("after removal: %+v, metric %v", f.s.Refused(), f.refusedMetric(t, tt.reason))
			}
		})
	}
}

// A private address equal to our bind address is no refusal: separate
// sites reuse private addresses (it is just never a same-site candidate).
func TestPrivateAddressLikeOursIsAllowed(t *testing.T) {
	f := policyFixture(t)
	f.replace(lease(1, bindAddr.String()))
	if p := f.rec.current()[lease(1, "").Subnet]; p.Keep != "" || p.Dst != lease(1, "").Attrs.PublicIP {
		t.Fatalf("peer %+v", p)
	}
	if r := f.s.Refused(); len(r) != 0 {
		t.Fatalf("refused %+v", r)
	}
}

// A good lease that turns hostile keeps its last good state.
func TestLeaseTurningHostileKeepsTheLastGoodState(t *testing.T) {
	f := policyFixture(t)
	good := lease(1, "")
	f.replace(good)
	bad := good
	bad.Attrs.PublicIP = publicAddr
	f.update(added(bad))
	if ch := f.rec.lastChanges(); len(ch) != 1 || ch[0].Peer.Keep == "" {
		t.Fatalf("changes %+v, want the subnet kept", ch)
	}
	if got := f.rec.lastAddrs(); len(got) != 1 || got[0] != "203.0.113.1" {
		t.Fatalf("filter %v, want the last good PublicIP only", got)
	}
}

// Two overlapping peer leases: the older wins on every node, whatever the
// order they arrive in; when the older goes, the newer is admitted.
func TestOverlappingPeersOlderWins(t *testing.T) {
	older := lease(8, "")
	older.Subnet = netip.MustParsePrefix("10.244.8.0/24")
	older.Created = 100
	newer := lease(9, "")
	newer.Subnet = netip.MustParsePrefix("10.244.8.128/25")
	newer.Created = 200
	tests := []struct {
		name string
		feed func(f *fixture)
	}{
		{"one snapshot, older first", func(f *fixture) { f.replace(older, newer) }},
		{"one snapshot, newer first", func(f *fixture) { f.replace(newer, older) }},
		{"older, then newer", func(f *fixture) { f.replace(older); f.update(added(newer)) }},
		{"newer, then older", func(f *fixture) { f.replace(newer); f.update(added(older)) }},
		{"one batch, newer first", func(f *fixture) { f.replace(); f.update(added(newer), added(older)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t) // SubnetLen unchecked: the overlap rule alone
			tt.feed(f)
			cur := f.rec.current()
			if _, ok := cur[older.Subnet]; !ok {
				t.Fatalf("the older lease is not a peer: %+v", cur)
			}
			if p, ok := cur[newer.Subnet]; ok {
				t.Fatalf("the newer lease is a peer: %+v", p)
			}
			if r := f.s.Refused(); len(r) != 1 || r[0].Subnet != newer.Subnet || r[0].Reason != ReasonOverlapsPeer {
				t.Fatalf("Refused() = %+v", r)
			}
			if a := f.rec.lastAddrs(); len(a) != 1 || a[0] != "203.0.113.8" {
				t.Fatalf("filter %v, want only the older peer", a)
			}
			f.update(removed(older))
			cur = f.rec.current()
			if _, ok := cur[newer.Subnet]; !ok || len(cur) != 1 {
				t.Fatalf("after the older went: %+v, want the newer admitted", cur)
			}
			if r := f.s.Refused(); len(r) != 0 || f.refusedMetric(t, ReasonOverlapsPeer) != 0 {
				t.Fatalf("still refused: %+v", r)
			}
		})
	}
}

func TestOverlapWithoutCreationOrderIsDecidedBySubnet(t *testing.T) {
	a := lease(8, "")
	b := lease(9, "")
	b.Subnet = netip.MustParsePrefix("10.244.8.0/25")
	for _, order := range [][]subnet.Lease{{a, b}, {b, a}} {
		f := newFixture(t)
		f.replace(order...)
		if r := f.s.Refused(); len(r) != 1 || r[0].Subnet != b.Subnet {
			t.Fatalf("Refused() = %+v: the same lease must lose on every node", r)
		}
	}
}
