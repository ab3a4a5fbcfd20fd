package backend

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// routeWatch polls the main table of a namespace until stopped and
// counts the polls that found a route of want missing.
type routeWatch struct {
	want    map[netip.Prefix]bool
	mu      sync.Mutex
	polls   int
	missing int
	example string
	stop    chan struct{}
	done    chan struct{}
}

func (n *nsNode) watchRoutes(want []netip.Prefix) *routeWatch {
	n.t.Helper()
	h, err := netnsutil.Handle(n.name)
	if err != nil {
		n.t.Fatal(err)
	}
	w := &routeWatch{want: map[netip.Prefix]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range want {
		w.want[p] = true
	}
	go func() {
		defer close(w.done)
		defer h.Close()
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
			if err != nil {
				continue // an interrupted dump: poll again
			}
			seen := 0
			for i := range routes {
				if routes[i].Dst != nil && w.want[prefixFromIPNet(routes[i].Dst)] {
					seen++
				}
			}
			w.mu.Lock()
			w.polls++
			if seen < len(w.want) {
				w.missing++
				if w.example == "" {
					w.example = fmt.Sprintf("%d of %d routes present", seen, len(w.want))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// finish stops the watch and returns polls, polls with a route missing
// and the first such poll.
func (w *routeWatch) finish() (int, int, string) {
	close(w.stop)
	<-w.done
	return w.polls, w.missing, w.example
}

// TestRouteModeSwitchInPlaceInNamespace: in auto mode a running
// reconciler crosses the threshold up (onlink → nexthop) and down
// (nexthop → onlink). While it does, a poller reads the routing table
// over and over: no peer that stays ever loses its route, because each
// route is replaced in place and orphaned nexthops are deleted only after
// the routes have moved off them.
//
// Both with single writes and with the batches a large pass sends.
func TestRouteModeSwitchInPlaceInNamespace(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "single", true: "batched"}[batched], func(t *testing.T) {
			testRouteModeSwitchInPlace(t, batched)
		})
	}
}

func testRouteModeSwitchInPlace(t *testing.T, batched bool) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	lean := n.netlinkKernel()
	var k Kernel = &countingLeanKernel{countingKernel: countingKernel{Kernel: lean}, lean: lean}
	if batched {
		k = lean
	}
	r, _ := n.startReconciler(k, time.Hour, prometheus.NewRegistry(), log, func(o *ReconcilerOptions) {
		o.RouteMode, o.NexthopThreshold = RouteModeAuto, 400
		o.Network = netip.MustParsePrefix("10.0.0.0/8")
		o.OwnSubnet = netip.MustParsePrefix("10.250.0.0/24")
	})
	leases := manyLeases(500)
	feed := newLeaseFeed(t, r)
	feed.replace(leases[:300])
	waitSynced(t, r)
	n.waitRouteShapes(r, "onlink", 300, 0, log)

	// switchOver sends events, waits for mode with routes and nexthops,
	// and fails if a poll meanwhile found a route of stay missing.
	switchOver := func(what string, stay []subnet.Lease, events []subnet.Event, mode string, routes, nexthops int) {
		t.Helper()
		var stayPrefixes []netip.Prefix
		for _, l := range stay {
			stayPrefixes = append(stayPrefixes, l.Subnet)
		}
		w := n.watchRoutes(stayPrefixes)
		feed.update(events)
		n.waitRouteShapes(r, mode, routes, nexthops, log)
		polls, missing, example := w.finish()
		t.Logf("%s: %d polls, %d with a route missing", what, polls, missing)
		if missing > 0 {
			t.Errorf("%s: %d of %d polls found a staying peer's route missing (%s)\n%s", what, missing, polls, example, log)
		}
	}
	var adds, removes []subnet.Event
	for _, l := range leases[300:] {
		adds = append(adds, added(l))
	}
	for _, l := range leases[150:] {
		removes = append(removes, removed(l))
	}
	switchOver("onlink → nexthop", leases[:300], adds, "nexthop", 500, 500)
	switchOver("nexthop → onlink", leases[:150], removes, "onlink", 150, 0)
}

// waitRouteShapes waits until the reconciler is in sync in mode with
// routes peer routes of that shape and nexthops nexthop objects.
func (n *nsNode) waitRouteShapes(r *Reconciler, mode string, routes, nexthops int, log *logtest.Buffer) {
	n.t.Helper()
	shape := map[string]string{"onlink": "onlink", "nexthop": "nhid"}[mode]
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := r.Status()
		out := n.sh("ip", "route", "show", "dev", "flannel.1")
		got, nh := strings.Count(out, shape), strings.Count(n.nexthopState(), "id ")
		if s.InSync && s.RouteMode == mode && got == routes && nh == nexthops {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("mode %s (%s), in sync %v: %d %s routes, %d nexthops; want %s, %d, %d\n%s",
				s.RouteMode, s.RouteModeReason, s.InSync, got, shape, nh, mode, routes, nexthops, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
