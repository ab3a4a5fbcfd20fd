package peerset

import (
	"bytes"
	"testing"
)

// TestCandidateCarriesTheLeaseKey: a candidate carries its lease's
// OverlaydKey (all zero without one), so that same-site detection checks
// answers against it; a verdict is honoured only for the key the lease
// names now: a new key drops it at once, and a late verdict for the old
// key changes nothing.
func TestCandidateCarriesTheLeaseKey(t *testing.T) {
	a := lease(1, "198.51.100.1")
	a.Attrs.SameSiteKey = bytes.Repeat([]byte{1}, 32)
	b := lease(2, "198.51.100.2") // an older overlayd: no key
	f := newFixture(t)
	f.replace(a, b)
	got := f.rec.candRepl[0]
	if len(got) != 2 || got[0].Key != [32]byte(a.Attrs.SameSiteKey) || got[1].Key != [32]byte{} {
		t.Fatalf("candidates %+v, want a's key and none for b", got)
	}
	oldKey := [32]byte(a.Attrs.SameSiteKey)
	f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1), Key: oldKey})
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PrivateIP {
		t.Fatalf("verified: %+v", ch)
	}
	rekeyed := a
	rekeyed.Attrs.SameSiteKey = bytes.Repeat([]byte{2}, 32)
	f.update(added(rekeyed))
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PublicIP {
		t.Fatalf("new key: %+v, want the PublicIP until verified again", ch)
	}
	if c := f.rec.candSet[len(f.rec.candSet)-1]; c.Key != [32]byte(rekeyed.Attrs.SameSiteKey) {
		t.Errorf("re-announced candidate key %x, want the new one", c.Key)
	}
	n := len(f.rec.updates)
	f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1), Key: oldKey})
	if len(f.rec.updates) != n {
		t.Fatalf("a verdict for the old key changed the peer: %+v", f.rec.lastChanges())
	}
}
