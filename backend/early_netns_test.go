package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/logtest"
)

// TestEarlyPeersInAutoModeInNamespace: with nexthop objects available and
// route mode auto, early peers below the threshold wait (no onlink routes
// that would have to move), and once their count reaches it they are
// programmed as nexthop routes before the snapshot, which then writes
// nothing more.
func TestEarlyPeersInAutoModeInNamespace(t *testing.T) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	r, _ := n.startReconciler(n.netlinkKernel(), time.Hour, prometheus.NewRegistry(), log, bigNetwork, func(o *ReconcilerOptions) {
		o.RouteMode, o.NexthopThreshold = RouteModeAuto, 400
	})
	leases := manyLeases(500)
	feed := newLeaseFeed(t, r)
	feed.set.AddEarlyPeers(leases[:300])
	feed.set.Step()
	waitStatus(t, r, log, "300 early peers applied", func(s Status) bool { return s.Counts.Peers == 300 })
	if out := n.sh("ip", "route", "show", "dev", "flannel.1"); strings.TrimSpace(out) != "" {
		t.Fatalf("routes below the auto threshold before the snapshot:\n%s", out)
	}
	feed.set.AddEarlyPeers(leases[300:])
	feed.set.Step()
	waitStatus(t, r, log, "500 early peers programmed", func(s Status) bool {
		return s.Counts.PeersProgrammed == 500 && s.RouteMode == string(RouteModeNexthop)
	})
	if s := r.Status(); s.Synced {
		t.Fatal("synced before the snapshot")
	}
	feed.replace(leases)
	n.waitRouteShapes(r, "nexthop", 500, 500, log)
	if got := len(log.Lines("INFO", `msg="route mode"`)); got != 1 {
		t.Errorf("%d route mode decisions, want 1 (nexthop from the start)\n%s", got, log)
	}
}

// waitStatus waits until ok holds for the reconciler's status.
func waitStatus(t *testing.T, r *Reconciler, log *logtest.Buffer, what string, ok func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(r.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s; status %+v\n%s", what, r.Status().Counts, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
