package backend

import (
	"net/netip"
	"testing"
)

func TestDesiredClaimsAreCounted(t *testing.T) {
	d := newDesiredState(nilLogger())
	a := &peer{subnet: netip.MustParsePrefix("10.244.1.0/24"), mac: [6]byte{1}, dst: netip.MustParseAddr("192.0.2.1")}
	b := &peer{subnet: netip.MustParsePrefix("10.244.2.0/24"), mac: [6]byte{1}, dst: netip.MustParseAddr("192.0.2.2")}
	d.add(a)
	d.add(b)
	if w := d.fdb[a.mac]; w.claims != 2 || w.owner.dst != b.dst {
		t.Fatalf("shared MAC: %+v", w)
	}
	d.remove(b)
	if w := d.fdb[a.mac]; w.claims != 1 || w.owner.dst != a.dst || w.owner != a {
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
