package nftrules

import (
	"errors"
	"slices"
	"testing"
)

// TestPeerFilterInstallFailsClosed: Install puts the table, set and chain
// in place before any peer is known: an empty set on a first start (VXLAN
// dropped until SetPeers) or the elements an earlier run left (a restart
// cuts nobody); a failed commit is an error; SetPeers works after it.
func TestPeerFilterInstallFailsClosed(t *testing.T) {
	first := newFakeKernel()
	f := newTestFilter(t, first)
	if err := f.Install(); err != nil {
		t.Fatal(err)
	}
	tbl := first.tables[ref4(OverlaydTable4)]
	if tbl == nil || tbl.Chains[PeerChain] == nil || tbl.Sets[PeerSet] == nil || len(tbl.Sets[PeerSet].Elements) != 0 {
		t.Fatalf("first start: table %+v, want the chain and an empty set", tbl)
	}
	if err := f.SetPeers(addrs("192.0.2.11")); err != nil || !slices.Equal(setElements(first), addrs("192.0.2.11")) {
		t.Errorf("SetPeers after Install: %v, set %v", err, setElements(first))
	}

	// A restart: a new filter on the kernel the first one left.
	if err := newTestFilter(t, first).Install(); err != nil || !slices.Equal(setElements(first), addrs("192.0.2.11")) {
		t.Errorf("restart: %v, set %v, want the elements kept", err, setElements(first))
	}

	broken := newFakeKernel()
	refused := errors.New("netlink: operation not supported")
	broken.fail = refused
	if err := newTestFilter(t, broken).Install(); !errors.Is(err, refused) {
		t.Errorf("Install on a kernel that refuses: %v, want the refusal", err)
	}
}
