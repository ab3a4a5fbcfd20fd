package nftrules

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func newTestFilter(t *testing.T, k Kernel) *PeerFilter {
	t.Helper()
	f, err := NewPeerFilter(PeerFilterOptions{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func setElements(k *fakeKernel) []netip.Addr {
	t := k.tables[ref4(OverlaydTable4)]
	if t == nil || t.Sets[PeerSet] == nil {
		return nil
	}
	return t.Sets[PeerSet].Elements
}

// TestPeerFilterNothingBeforeSetPeers: an empty set would drop every peer.
func TestPeerFilterNothingBeforeSetPeers(t *testing.T) {
	k := newFakeKernel()
	if err := newTestFilter(t, k).Ensure(); err != nil || len(k.tables) != 0 {
		t.Errorf("Ensure before SetPeers: %v, %d tables", err, len(k.tables))
	}
}

// TestPeerFilterIncremental: the first SetPeers installs set and chain in
// one batch; later ones add and delete only the difference, one batch each.
func TestPeerFilterIncremental(t *testing.T) {
	k := newFakeKernel()
	f := newTestFilter(t, k)
	if err := f.SetPeers(addrs("192.0.2.12", "192.0.2.11", "192.0.2.11", "2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	if got := setElements(k); !slices.Equal(got, addrs("192.0.2.11", "192.0.2.12")) {
		t.Errorf("set %v", got)
	}
	if tbl := k.tables[ref4(OverlaydTable4)]; tbl.Chains[PeerChain] == nil || len(k.commits) != 1 {
		t.Fatalf("after the first SetPeers: %d batches, table %+v", len(k.commits), tbl)
	}
	for _, step := range []struct {
		name  string
		peers []netip.Addr
		want  []Op
	}{
		{"one added", addrs("192.0.2.11", "192.0.2.12", "192.0.2.13"), []Op{AddElements{Ref: ref4(OverlaydTable4), Set: PeerSet, Addrs: addrs("192.0.2.13")}}},
		{"one removed", addrs("192.0.2.11", "192.0.2.13"), []Op{DelElements{Ref: ref4(OverlaydTable4), Set: PeerSet, Addrs: addrs("192.0.2.12")}}},
		{"unchanged", addrs("192.0.2.13", "192.0.2.11"), nil},
	} {
		k.commits = nil
		if err := f.SetPeers(step.peers); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.want == nil {
			if len(k.commits) != 0 {
				t.Errorf("%s: %d batches, want none", step.name, len(k.commits))
			}
			continue
		}
		if len(k.commits) != 1 || !opsEqual(k.lastCommit(), step.want) {
			t.Errorf("%s: batches %+v, want %+v", step.name, k.commits, step.want)
		}
		if got := setElements(k); !slices.Equal(got, sortedUnique(step.peers)) {
			t.Errorf("%s: set %v", step.name, got)
		}
	}
}

func opsEqual(a, b []Op) bool {
	return slices.EqualFunc(a, b, func(x, y Op) bool {
		switch x := x.(type) {
		case AddElements:
			y, ok := y.(AddElements)
			return ok && x.Ref == y.Ref && x.Set == y.Set && slices.Equal(x.Addrs, y.Addrs)
		case DelElements:
			y, ok := y.(DelElements)
			return ok && x.Ref == y.Ref && x.Set == y.Set && slices.Equal(x.Addrs, y.Addrs)
		}
		return false
	})
}

// TestPeerFilterRepairsDrift: elements removed or added behind our back,
// and a deleted chain, are put back by Ensure; an incremental update that
// fails because the set changed falls back to reading it.
func TestPeerFilterRepairsDrift(t *testing.T) {
	k := newFakeKernel()
	f := newTestFilter(t, k)
	peers := addrs("192.0.2.11", "192.0.2.12")
	if err := f.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
	tbl := k.tables[ref4(OverlaydTable4)]
	tbl.Sets[PeerSet].Elements = addrs("192.0.2.12", "192.0.2.99")
	delete(tbl.Chains, PeerChain)
	if err := f.Ensure(); err != nil {
		t.Fatal(err)
	}
	if got := setElements(k); !slices.Equal(got, peers) || k.tables[ref4(OverlaydTable4)].Chains[PeerChain] == nil {
		t.Errorf("after repair: set %v, chains %v", got, sortedKeys(k.tables[ref4(OverlaydTable4)].Chains))
	}
	// 192.0.2.12 vanishes; removing it incrementally fails, the fallback
	// reads the set back.
	k.tables[ref4(OverlaydTable4)].Sets[PeerSet].Elements = addrs("192.0.2.11")
	if err := f.SetPeers(addrs("192.0.2.11")); err != nil {
		t.Fatal(err)
	}
	if got := setElements(k); !slices.Equal(got, addrs("192.0.2.11")) {
		t.Errorf("after fallback: set %v", got)
	}
	// One failure: the fallback writes it. Two: reported, retried later.
	k.fail = errors.New("netlink: no buffer space")
	if err := f.SetPeers(addrs("192.0.2.11", "192.0.2.13")); err != nil || !slices.Equal(setElements(k), addrs("192.0.2.11", "192.0.2.13")) {
		t.Errorf("one failure: %v, set %v", err, setElements(k))
	}
	k.fail, k.failN = errors.New("netlink: no buffer space"), 2
	if err := f.SetPeers(addrs("192.0.2.11", "192.0.2.14")); err == nil {
		t.Error("a failed update was not reported")
	}
	if err := f.Ensure(); err != nil || !slices.Equal(setElements(k), addrs("192.0.2.11", "192.0.2.14")) {
		t.Errorf("retry: %v, set %v", err, setElements(k))
	}
}

// TestRemove: RemoveAll takes every table of the mode (ours and
// flanneld's) in one batch; the partial removals take their own parts.
func TestRemove(t *testing.T) {
	k := newFakeKernel()
	o := testOptions(k)
	o.VXLANNoTrack = netip.MustParseAddrPort("192.0.2.10:8472")
	if err := newTestManager(t, o).Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := newTestFilter(t, k).SetPeers(addrs("192.0.2.11")); err != nil {
		t.Fatal(err)
	}
	if err := RemovePeerFilter(k); err != nil {
		t.Fatal(err)
	}
	if tbl := k.tables[ref4(OverlaydTable4)]; tbl.Sets[PeerSet] != nil || tbl.Chains[PeerChain] != nil || tbl.Chains[NoTrackChain] == nil {
		t.Errorf("after RemovePeerFilter: %+v", tbl)
	}
	if err := RemoveNoTrack(k); err != nil || k.tables[ref4(OverlaydTable4)].Chains[NoTrackChain] != nil {
		t.Errorf("RemoveNoTrack: %v", err)
	}
	k.tables[Ref{Family: 10, Table: FlannelTable6}] = &TableState{}
	k.commits = nil
	names, err := RemoveAll(k)
	if err != nil || len(k.tables) != 0 || len(k.commits) != 1 || len(names) != 3 {
		t.Errorf("RemoveAll: %v, removed %v, %d tables left, %d batches", err, names, len(k.tables), len(k.commits))
	}
	if names, err := RemoveAll(k); err != nil || len(names) != 0 || len(k.commits) != 1 {
		t.Errorf("RemoveAll with nothing left: %v, %v", names, err)
	}
}

// TestPeerFilterExtraPorts: the health probe port gets the same drop rule
// as VXLAN's, in the same chain.
func TestPeerFilterExtraPorts(t *testing.T) {
	k := newFakeKernel()
	f, err := NewPeerFilter(PeerFilterOptions{Kernel: k, ExtraPorts: []int{8476}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetPeers(addrs("192.0.2.11")); err != nil {
		t.Fatal(err)
	}
	c := k.tables[ref4(OverlaydTable4)].Chains[PeerChain]
	want := append(PeerFilterRules(8472, false), PeerFilterRules(8476, false)...)
	if c == nil || len(c.Rules) != len(want) {
		t.Fatalf("chain %s: %+v, want %d rules", PeerChain, c, len(want))
	}
	for i := range want {
		if c.Rules[i].Key(0) != want[i].Key(0) {
			t.Errorf("rule %d differs", i)
		}
	}
	if _, err := NewPeerFilter(PeerFilterOptions{Kernel: k, ExtraPorts: []int{70000}}); err == nil {
		t.Errorf("ExtraPorts 70000 accepted")
	}
}
