package backend

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

func TestParsePeer(t *testing.T) {
	rules := peerRules{
		network:   netip.MustParsePrefix("10.244.0.0/16"),
		ownSubnet: netip.MustParsePrefix("10.244.99.0/24"),
		peerDst:   publicIPOf,
	}
	with := func(l subnet.Lease, edit func(*subnet.Lease)) subnet.Lease { edit(&l); return l }
	tests := []struct {
		name    string
		lease   subnet.Lease
		ignored bool
		err     string // substring; "" = valid
	}{
		{"valid", observedPeer, false, ""},
		{"other backend", with(observedPeer, func(l *subnet.Lease) { l.Attrs.BackendType = "udp" }), true, "BackendType"},
		{"own subnet", lease("10.244.99.0/24", "192.0.2.1", "0e:00:00:00:00:01"), true, "own subnet"},
		{"outside network", lease("10.9.0.0/24", "192.0.2.1", "0e:00:00:00:00:01"), false, "not inside the network"},
		{"the network itself", lease("10.244.0.0/16", "192.0.2.1", "0e:00:00:00:00:01"), false, "not inside the network"},
		{"unmasked subnet", with(observedPeer, func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix("10.244.37.1/24") }), false, "masked"},
		{"missing BackendData", with(observedPeer, func(l *subnet.Lease) { l.Attrs.BackendData = nil }), false, "BackendData"},
		{"bad MAC", lease("10.244.37.0/24", "192.0.2.2", "56:b3:03"), false, "VtepMAC"},
		{"no PublicIP", with(observedPeer, func(l *subnet.Lease) { l.Attrs.PublicIP = netip.Addr{} }), false, "underlay address"},
	}
	for _, tt := range tests {
		p, err := rules.parsePeer(tt.lease)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err %v, want mention of %q", tt.name, err, tt.err)
		case err != nil && errors.Is(err, errIgnoredLease) != tt.ignored:
			t.Errorf("%s: ignored = %v, want %v", tt.name, !tt.ignored, tt.ignored)
		case err == nil && (p.mac != [6]byte{0x56, 0xb3, 0x03, 0x00, 0xef, 0xbd} || p.dst.String() != "192.0.2.2"):
			t.Errorf("%s: peer %+v", tt.name, p)
		}
	}
}

func TestDesiredClaimsAreCounted(t *testing.T) {
	d := newDesiredState(nilLogger())
	a := &peer{subnet: netip.MustParsePrefix("10.244.1.0/24"), mac: [6]byte{1}, dst: netip.MustParseAddr("192.0.2.1")}
	b := &peer{subnet: netip.MustParsePrefix("10.244.2.0/24"), mac: [6]byte{1}, dst: netip.MustParseAddr("192.0.2.2")}
	d.add(a)
	d.add(b)
	if w := d.fdb[a.mac]; w.claims != 2 || w.dst != b.dst {
		t.Fatalf("shared MAC: %+v", w)
	}
	d.remove(b)
	if w := d.fdb[a.mac]; w.claims != 1 || w.dst != a.dst || w.owner != a {
		t.Fatalf("after removing the newer claimant: %+v", w)
	}
	d.remove(a)
	if len(d.fdb) != 0 || len(d.neigh) != 0 || len(d.peers) != 0 {
		t.Fatalf("left over: %+v %+v", d.fdb, d.neigh)
	}
	if len(*d.dirty.fdb) != 1 || len(*d.dirty.neigh) != 2 || len(*d.dirty.route) != 2 {
		t.Fatalf("dirty keys %+v", d.dirty)
	}
}
