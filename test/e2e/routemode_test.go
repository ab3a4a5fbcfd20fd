package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// routeModes are the two shapes of peer routes (--route-mode).
var routeModes = []string{"onlink", "nexthop"}

// peerRoute matches the route to a peer subnet in a mode: flanneld's
// `S via A dev flannel.1 onlink`, or `S nhid <id> via A dev flannel.1
// onlink` through a nexthop object.
func peerRoute(mode string, s netip.Prefix) *regexp.Regexp {
	nh := ""
	if mode == "nexthop" {
		nh = ` nhid \d+`
	}
	return regexp.MustCompile(fmt.Sprintf(`^%s%s via %s dev flannel\.1 onlink$`,
		regexp.QuoteMeta(s.String()), nh, regexp.QuoteMeta(s.Addr().String())))
}

// checkRouteShapes fails unless every node routes to every other node's
// subnet in mode's shape, has one nexthop object per peer in nexthop mode
// (none in onlink mode), and says so in /status.
func checkRouteShapes(c *cluster, mode string) error { return checkRouteShapesOn(c, mode, c.Nodes...) }

// checkRouteShapesOn is checkRouteShapes for some of the nodes.
func checkRouteShapesOn(c *cluster, mode string, nodes ...*lab.Node) error {
	for _, n := range nodes {
		st, err := c.DeviceState(labtest.Context(c.t, 10*time.Second), n, lab.FlannelDevice)
		if err != nil {
			return err
		}
		peers := 0
		for _, p := range c.Nodes {
			if p == n {
				continue
			}
			peers++
			if re := peerRoute(mode, p.Subnet.Lease()); !anyMatch(st.Routes, re) {
				return fmt.Errorf("%s: no route %s in %q", n.Name, re, st.Routes)
			}
		}
		nh, err := netnsutil.Exec(labtest.Context(c.t, 5*time.Second), n.NS, "ip", "nexthop", "show", "dev", "flannel.1")
		if err != nil {
			return err
		}
		want := 0
		if mode == "nexthop" {
			want = peers
		}
		if got := strings.Count(nh, "onlink"); got != want {
			return fmt.Errorf("%s: %d nexthop objects, want %d:\n%s", n.Name, got, want, nh)
		}
		doc, err := labtest.Status(labtest.Context(c.t, 5*time.Second), n)
		if err != nil {
			return err
		}
		if doc.Sync == nil || doc.Sync.RouteMode != mode || !doc.Sync.InSync {
			return fmt.Errorf("%s: /status sync %+v, want route mode %s in sync", n.Name, doc.Sync, mode)
		}
	}
	return nil
}

func anyMatch(lines []string, re *regexp.Regexp) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// TestRouteModes runs the core of the lifecycle in each route mode: pods
// reach each other, drift is repaired (in nexthop mode also a deleted
// nexthop object, which takes its route with it), a warm restart writes
// nothing, and a deleted lease takes the peer's entries (and nexthop)
// away.
func TestRouteModes(t *testing.T) {
	for _, mode := range routeModes {
		t.Run(mode, func(t *testing.T) { testRouteMode(t, mode) })
	}
}

func testRouteMode(t *testing.T, mode string) {
	c := startCluster(t, 3, 1, "--route-mode="+mode, "--resync-interval=1s")
	c.mustPingAll()
	labtest.Eventually(t, 10*time.Second, mode+" routes everywhere", func() error { return checkRouteShapes(c, mode) })

	self, peer := c.Nodes[0], c.Nodes[1]
	other := peer.Subnet.Lease()
	netnsutil.MustExec(t, self.NS, "ip", "route", "del", other.String())
	if mode == "nexthop" {
		third := c.Nodes[2].Subnet.Lease()
		out := netnsutil.MustExec(t, self.NS, "ip", "route", "show", third.String())
		id := regexp.MustCompile(`nhid (\d+)`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("no nhid in %q", out)
		}
		netnsutil.MustExec(t, self.NS, "ip", "nexthop", "del", "id", id[1])
	}
	labtest.Eventually(t, 10*time.Second, "drift repaired", func() error { return checkRouteShapes(c, mode) })
	c.mustPingAll()

	if err := c.Agent(peer).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("overlayd did not exit 0 on SIGTERM: %v", err)
	}
	c.start(peer)
	c.waitUp(peer)
	labtest.Eventually(t, 10*time.Second, "restarted daemon in sync", func() error { return checkRouteShapes(c, mode) })
	if w := kernelWrites(t, peer); w != 0 {
		t.Fatalf("warm restart in %s mode made %v kernel writes, want 0", mode, w)
	}

	gone := c.Nodes[2]
	if err := c.Agent(gone).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deleteLease(t, c, gone)
	labtest.Eventually(t, 10*time.Second, "deleted peer removed", func() error {
		for _, n := range c.Nodes[:2] {
			st, err := c.DeviceState(labtest.Context(t, 5*time.Second), n, lab.FlannelDevice)
			if err != nil {
				return err
			}
			for _, l := range st.Routes {
				if strings.HasPrefix(l, gone.Subnet.Lease().String()+" ") {
					return fmt.Errorf("%s: route still there: %s", n.Name, l)
				}
			}
			nh := netnsutil.MustExec(t, n.NS, "ip", "nexthop", "show", "dev", "flannel.1")
			if want := map[string]int{"onlink": 0, "nexthop": 1}[mode]; strings.Count(nh, "onlink") != want {
				return fmt.Errorf("%s: nexthops %q, want %d", n.Name, nh, want)
			}
		}
		return nil
	})
}

// TestRouteModeSwitchLosesNoPings switches a live node's route mode
// onlink → nexthop → onlink by restarting its daemon with the other
// --route-mode, while its pod pings every other pod and they ping back
// every 10 ms. Every route is replaced in place and the orphaned nexthops
// are deleted only after, so no echo is lost.
func TestRouteModeSwitchLosesNoPings(t *testing.T) {
	c := startCluster(t, 3, 1, "--route-mode=onlink")
	c.mustPingAll()
	n := c.Nodes[0]
	streams := startSwapStreams(t, c.Lab, n)
	time.Sleep(300 * time.Millisecond) // a baseline before the first switch
	for _, mode := range []string{"nexthop", "onlink"} {
		if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
			t.Fatalf("overlayd did not exit 0 on SIGTERM: %v", err)
		}
		c.start(n, "--route-mode="+mode)
		c.waitUp(n)
		labtest.Eventually(t, 10*time.Second, "node0 in "+mode+" mode", func() error {
			return checkRouteShapesOn(c, mode, n)
		})
		time.Sleep(300 * time.Millisecond)
	}
	if lost := streams.stopAndCountLost(t, "switching route modes"); lost != 0 {
		t.Fatalf("%d echoes lost while switching route modes", lost)
	}
}

// TestTakeoverFromFlanneldIntoNexthopModeAndBack swaps a node's daemon
// from flanneld to overlayd with --route-mode=nexthop and back, while its
// pod pings the others every 10 ms both ways: overlayd replaces flanneld's
// routes one by one with routes through nexthop objects, flanneld then
// replaces those with its own again, and no echo is lost either way.
func TestTakeoverFromFlanneldIntoNexthopModeAndBack(t *testing.T) {
	c := startMixedCluster(t, 1, kindFlanneld, kindOverlayd, kindFlanneld)
	c.mustPingAll()
	n := c.Nodes[0]

	streams := startSwapStreams(t, c.Lab, n)
	time.Sleep(300 * time.Millisecond)
	if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
		t.Errorf("flanneld did not exit 0 on SIGTERM: %v", err)
	}
	c.start(n, "--route-mode=nexthop")
	c.waitUp(n)
	labtest.Eventually(t, 10*time.Second, n.Name+" in nexthop mode", func() error {
		return checkRouteShapesOn(c.cluster, "nexthop", n)
	})
	time.Sleep(swapSettle)
	if lost := streams.stopAndCountLost(t, "flanneld -> overlayd (nexthop)"); lost != 0 {
		t.Errorf("swap to overlayd in nexthop mode lost %d echoes, want 0", lost)
	}
	c.mustPingAll()

	if lost := swapDaemon(t, c, n, kindFlanneld); lost != 0 {
		t.Errorf("swap back to flanneld lost %d echoes, want 0", lost)
	}
	c.mustPingAll()
	st, err := c.DeviceState(labtest.Context(t, 10*time.Second), n, lab.FlannelDevice)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Nodes[1:] {
		if re := peerRoute("onlink", p.Subnet.Lease()); !anyMatch(st.Routes, re) {
			t.Errorf("after flanneld took over again: no route %s in %q", re, st.Routes)
		}
	}
}
