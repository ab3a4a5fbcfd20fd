package peerset

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestEntryFootprint: the per-subnet entry is kept small (one is held per
// peer: at 100,000 peers every byte is 100 kB), and a flanneld lease, with
// no same-site fields, costs no second allocation; a lease that has them
// keeps them, and its verified private address becomes the destination.
func TestEntryFootprint(t *testing.T) {
	if size := unsafe.Sizeof(entry{}); size > 112 {
		t.Errorf("entry is %d bytes, want at most 112", size)
	}
	f := newFixture(t)
	plain, sameSite := lease(1, ""), lease(2, "192.0.2.2")
	f.replace(plain, sameSite)
	tests := []struct {
		name     string
		sub      netip.Prefix
		wantSite bool
		wantDst  string
	}{
		{"flanneld lease", plain.Subnet, false, "203.0.113.1"},
		{"lease with a private address", sameSite.Subnet, true, "203.0.113.2"},
	}
	for _, tc := range tests {
		e := f.s.peers[tc.sub]
		if got := e.good.site != nil; got != tc.wantSite {
			t.Errorf("%s: same-site fields allocated %v, want %v", tc.name, got, tc.wantSite)
		}
		if got := e.dst().String(); got != tc.wantDst {
			t.Errorf("%s: dst %s, want %s", tc.name, got, tc.wantDst)
		}
	}
	f.verdict(Verdict{Subnet: sameSite.Subnet, Private: sameSite.Attrs.PrivateIP, MAC: mac(2)})
	if p := f.rec.current()[sameSite.Subnet]; p.Dst.String() != "192.0.2.2" {
		t.Errorf("after the verdict the peer's dst is %s, want the private address 192.0.2.2", p.Dst)
	}
}
