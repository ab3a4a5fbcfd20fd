package backend

import (
	"slices"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// early feeds leases of a first list still being read through the peer
// set (AddEarlyPeers), as the kube lease manager does page by page.
func (f *fixture) early(leases []subnet.Lease) {
	f.set.AddEarlyPeers(leases)
	f.set.Step()
}

// TestEarlyPeersProgrammedBeforeSnapshot: peers of a list still being read
// are programmed as they come, nothing else is deleted before the
// snapshot (a stale entry of a previous run stays), and the snapshot then
// removes both the stale entry and an early peer it no longer holds.
func TestEarlyPeersProgrammedBeforeSnapshot(t *testing.T) {
	g := restartedOverStale(t)
	second := lease("10.244.38.0/24", "192.0.2.3", "0e:00:00:00:00:38")
	g.early([]subnet.Lease{observedPeer})
	g.step()
	g.early([]subnet.Lease{second})
	g.step()
	routes := func() []string { return slices.Sorted(slices.Values(g.k.RouteLines())) }
	want := []string{
		"10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink",
		"10.244.38.0/24 via 10.244.38.0 dev flannel.1 onlink",
		"10.244.77.0/24 via 10.244.77.0 dev flannel.1 onlink",
	}
	if got := routes(); !slices.Equal(got, want) {
		t.Fatalf("routes before the snapshot:\n%q\nwant (early peers added, stale kept)\n%q", got, want)
	}
	select {
	case <-g.r.Synced():
		t.Fatal("Synced before the first snapshot")
	default:
	}
	if s := g.r.Status(); s.Synced {
		t.Fatal("status says synced before the first snapshot")
	}

	g.replace([]subnet.Lease{observedPeer})
	g.step()
	want = []string{"10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink"}
	if got := routes(); !slices.Equal(got, want) {
		t.Fatalf("routes after the snapshot: %q, want %q", got, want)
	}
	if n := len(g.k.NeighLines(g.dev)); n != 1 {
		t.Errorf("%d neighbours after the snapshot, want 1", n)
	}
	select {
	case <-g.r.Synced():
	default:
		t.Fatal("not Synced after the snapshot's pass")
	}
	// Early peers after the snapshot are ignored.
	g.early([]subnet.Lease{second})
	g.step()
	if got := routes(); !slices.Equal(got, want) {
		t.Fatalf("early peers after the snapshot changed routes: %q", got)
	}
}

// TestEarlyPeersOnlinkWithoutNexthops: in route mode auto on a kernel
// without nexthop objects the mode is onlink whatever the count, so early
// peers are programmed at once.
func TestEarlyPeersOnlinkWithoutNexthops(t *testing.T) {
	f := newFixture(t, func(o *ReconcilerOptions) {
		o.RouteMode, o.NexthopThreshold = RouteModeAuto, 3
	})
	f.early([]subnet.Lease{observedPeer})
	f.step()
	if got := f.k.RouteLines(); len(got) != 1 {
		t.Fatalf("routes of early peers: %q, want 1", got)
	}
}
