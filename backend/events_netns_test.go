package backend

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/subnet"
)

// eventsKernel opens a NetlinkKernel on the node's namespace whose
// notification socket has a receive buffer of bufBytes (0: the default).
func (n *nsNode) eventsKernel(bufBytes int) *NetlinkKernel {
	n.t.Helper()
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		n.t.Fatal(err)
	}
	defer ns.Close()
	k, err := newNetlinkKernel(n.h, ns, bufBytes)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { k.Close() })
	return k
}

// fullState is kernelState plus our nexthop objects.
func (n *nsNode) fullState() string {
	return n.kernelState() + "$ ip nexthop show\n" + strings.TrimSpace(n.sh("ip", "nexthop", "show")) + "\n"
}

func (n *nsNode) waitFullState(what, want string, within time.Duration, log *logtest.Buffer) {
	n.t.Helper()
	n.waitFor(what, want, within, n.fullState, log)
}

func dumpsByReason(r *Reconciler) map[string]float64 {
	m := map[string]float64{}
	for d := range numDumpReasons {
		if v := value(r.metrics.dumps[d]); v != 0 {
			m[d.String()] = v
		}
	}
	return m
}

// TestNotificationsRepairDriftWithoutResync: with the periodic resync an
// hour away, a neighbour, an FDB entry, a route and a nexthop object
// deleted or altered by someone else are restored from the kernel's
// notifications, without a dump; the echoes of the reconciler's own
// writes change nothing and start no pass. Without notifications nothing
// would repair them before the resync.
func TestNotificationsRepairDriftWithoutResync(t *testing.T) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	k := n.eventsKernel(0)
	r, _ := n.startReconciler(k, time.Hour, prometheus.NewRegistry(), log, func(o *ReconcilerOptions) {
		o.RouteMode = RouteModeNexthop
	})
	r.ReplacePeers(peersFor(r, nsPeers))
	waitSynced(t, r)
	want := n.fullState()
	if !strings.Contains(want, "nhid") {
		t.Fatalf("not in nexthop mode:\n%s", want)
	}
	// Let the first pass's echoes be read.
	time.Sleep(300 * time.Millisecond)
	fullBefore := value(r.metrics.passes[passFull])
	if got := value(r.metrics.eventChanges); got != 0 {
		t.Fatalf("the echoes of our own writes changed the believed state %v times\n%s", got, log)
	}
	// Of the 12 writes' echoes only the 3 FDB entries' are read: the
	// kernel drops the others, which name the writing socket's port.
	if got := value(r.metrics.events); got < 3 || got >= 12 {
		t.Errorf("read %v notifications after writing 12 entries, want the 3 FDB entries' echoes", got)
	}

	steps := []struct {
		what string
		cmd  []string
	}{
		{"neighbour deleted", []string{"ip", "neigh", "del", "10.244.37.0", "dev", "flannel.1"}},
		{"FDB entry deleted", []string{"bridge", "fdb", "del", "0e:00:00:00:00:38", "dev", "flannel.1", "dst", "192.0.2.3", "self"}},
		{"FDB destination replaced", []string{"bridge", "fdb", "replace", "0e:00:00:00:00:39", "dev", "flannel.1", "dst", "192.0.2.200", "self", "permanent"}},
		{"route deleted", []string{"ip", "route", "del", "10.244.38.0/24"}},
		{"nexthop deleted (its route goes with it)", []string{"ip", "nexthop", "del", "id", fmt.Sprint(nexthopID(r.opts.Network, nsPeers[2].Subnet))}},
		{"neighbour altered", []string{"ip", "neigh", "replace", "10.244.39.0", "lladdr", "0e:de:ad:00:00:39", "dev", "flannel.1", "nud", "permanent"}},
	}
	for _, s := range steps {
		// The repair is faster than reading the state back: that the
		// change happened shows in the notifications that changed the
		// believed state.
		changes := value(r.metrics.eventChanges)
		n.sh(s.cmd...)
		n.waitFullState(s.what, want, 5*time.Second, log)
		if value(r.metrics.eventChanges) == changes {
			t.Fatalf("%s: no notification changed the believed state\n%s", s.what, log)
		}
	}
	if got := dumpsByReason(r); len(got) != 1 || got["start"] != 1 {
		t.Errorf("dumps by reason: %v, want only the start's", got)
	}
	if got := value(r.metrics.eventChanges); got < float64(len(steps)) {
		t.Errorf("kernel_event_changes_total = %v, want at least %d", got, len(steps))
	}
	drift := 0.0
	for kind := range numKinds {
		drift += value(r.metrics.drift[kind])
	}
	if drift < float64(len(steps)) {
		t.Errorf("drift_repaired_total sums to %v, want at least %d", drift, len(steps))
	}
	// No work loop: once repaired, the echoes of the repairs start no pass.
	time.Sleep(300 * time.Millisecond)
	passes := value(r.metrics.passes[passFull])
	time.Sleep(500 * time.Millisecond)
	if again := value(r.metrics.passes[passFull]); again != passes {
		t.Errorf("full passes went on after the repairs: %v, then %v", passes, again)
	}
	if passes-fullBefore > 3*float64(len(steps)) {
		t.Errorf("%v full passes for %d repairs", passes-fullBefore, len(steps))
	}
}

// TestNotificationOverflowDumps: when the notification socket overflows
// (ENOBUFS), changes were lost, so the next pass reads the whole kernel
// again, and an entry deleted meanwhile comes back.
func TestNotificationOverflowDumps(t *testing.T) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	// The smallest buffer the kernel allows holds a handful of
	// notifications.
	k := n.eventsKernel(1)
	r, _ := n.startReconciler(k, time.Hour, prometheus.NewRegistry(), log)
	r.ReplacePeers(peersFor(r, nsPeers))
	waitSynced(t, r)
	n.waitState("first sync", nsGolden, log)
	time.Sleep(200 * time.Millisecond)
	before := dumpsByReason(r)["events-lost"]

	// Thousands of notifications in one burst, none of them about our
	// entries, then one of ours deleted.
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("neigh replace 192.0.2.%d lladdr 0e:00:00:01:%02x:%02x dev ul0 nud permanent",
			2+i%250, i/256, i%256))
	}
	lines = append(lines, "route del 10.244.38.0/24")
	n.batch("ip", lines)
	n.waitState("route restored", nsGolden, log)
	deadline := time.Now().Add(5 * time.Second)
	for dumpsByReason(r)["events-lost"] <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no dump after the notification socket overflowed: dumps %v\n%s", dumpsByReason(r), log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnEchoesChangeNothing: adding, changing and removing peers in
// either route mode, the notifications of the reconciler's own writes
// (a deleted neighbour is first reported failed, then deleted) never
// change its believed state, so they start no full pass.
func TestOwnEchoesChangeNothing(t *testing.T) {
	changed := append([]subnet.Lease{}, nsPeers...)
	changed[0] = lease("10.244.37.0/24", "192.0.2.9", "0e:00:00:00:00:99")
	for _, mode := range []RouteMode{RouteModeOnlink, RouteModeNexthop} {
		t.Run(string(mode), func(t *testing.T) {
			n := newNSNode(t)
			log := &logtest.Buffer{}
			r, _ := n.startReconciler(n.eventsKernel(0), time.Hour, prometheus.NewRegistry(), log, func(o *ReconcilerOptions) {
				o.RouteMode = mode
			})
			feed := newLeaseFeed(t, r)
			feed.replace(nsPeers[:2])
			waitSynced(t, r)
			for i, leases := range [][]subnet.Lease{nsPeers, nsPeers[:1], changed, nil, nsPeers} {
				feed.replace(leases)
				deadline := time.Now().Add(5 * time.Second)
				for value(r.metrics.peers) != float64(len(leases)) || !r.Status().InSync {
					if time.Now().After(deadline) {
						t.Fatalf("step %d: not in sync with %d peers\n%s", i, len(leases), log)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			time.Sleep(300 * time.Millisecond)
			if got := value(r.metrics.eventChanges); got != 0 {
				t.Errorf("our own writes' notifications changed the believed state %v times\n%s", got, log)
			}
			if got := value(r.metrics.passes[passFull]); got != 1 {
				t.Errorf("%v full passes, want only the first", got)
			}
			if got := value(r.metrics.events); got == 0 {
				t.Error("no notification was read")
			}
		})
	}
}

// TestDeviceDownAndUpRepaired: the kernel removes the routes of a device
// that goes down without a notification of their own; the link's
// notifications make the reconciler read the kernel again and put them
// back once it is up, with the resync an hour away.
func TestDeviceDownAndUpRepaired(t *testing.T) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	r, _ := n.startReconciler(n.eventsKernel(0), time.Hour, prometheus.NewRegistry(), log)
	r.ReplacePeers(peersFor(r, nsPeers))
	waitSynced(t, r)
	n.waitState("first sync", nsGolden, log)
	before := dumpsByReason(r)["device"]
	n.sh("ip", "link", "set", "flannel.1", "down")
	n.sh("ip", "link", "set", "flannel.1", "up")
	n.waitState("routes back after down and up", nsGolden, log)
	if got := dumpsByReason(r)["device"]; got <= before {
		t.Errorf("dumps{reason=device} = %v, want more than %v", got, before)
	}
}
