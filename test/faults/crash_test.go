package faults

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// largePeers is the size of the "large sync": 3 entries each.
const largePeers = 1500

// TestCrashMidSyncConverges: overlayd is stopped while it programs the
// entries of 1500 peers, the peer set changes while it is down (peers
// removed, MACs and addresses changed, peers added), and the restarted
// daemon converges to exactly the entries etcd asks for: none missing,
// none stale, none duplicated. SIGKILL in the first full sync after
// start and in the middle of a large watch update; SIGTERM in the first
// sync (exit 0, nothing written so far is wiped); and a burst of 2000
// watch events applied in full by a daemon left running (flannel lost
// routes to such bursts, ENOBUFS).
func TestCrashMidSyncConverges(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2, pods: 1, network: netip.MustParsePrefix("10.0.0.0/10"), stopped: true})
	peers := c.newFakePeers(netip.MustParsePrefix("10.8.0.0/24"), largePeers)
	c.putPeers(peers)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	c.start(n1)
	c.waitUp(n1)
	must(t, c.AddPods(labtest.Context(t, 10*time.Second), n1))
	inFirstSync := func(entries int) bool {
		total := 3 * (len(peers) + 1)
		return entries > total/10 && entries < total*9/10
	}
	restartAndConverge := func(t *testing.T) {
		c.start(n0)
		c.waitUp(n0)
		c.waitConverged(convergeTimeout, n0)
		requireInSync(t, n0)
	}

	t.Run("SIGKILL in the first sync", func(t *testing.T) {
		stopMidSync(t, c, n0, syscall.SIGKILL, func() { c.start(n0) }, inFirstSync)
		peers = c.churn(peers, 300)
		restartAndConverge(t)
	})

	t.Run("SIGKILL in a large watch update", func(t *testing.T) {
		replaced, fresh := c.replacement(peers, 1000, "10.24.0.0/24")
		before := 3 * (len(peers) + 1)
		stopMidSync(t, c, n0, syscall.SIGKILL, func() {
			c.deleteLeases(replaced...)
			c.putPeers(fresh)
		}, func(entries int) bool { return entries < before-300 || entries > before+300 })
		peers = c.churn(append(peers[1000:], fresh...), 200)
		restartAndConverge(t)
	})

	t.Run("SIGTERM in the first sync", func(t *testing.T) {
		c.stop(n0, syscall.SIGTERM)
		netnsutil.MustExec(t, n0.NS, "ip", "link", "del", lab.FlannelDevice) // sync from scratch
		stopMidSync(t, c, n0, syscall.SIGTERM, func() { c.start(n0) }, inFirstSync)
		peers = c.churn(peers, 300)
		restartAndConverge(t)
	})

	t.Run("burst of watch events while running", func(t *testing.T) {
		replaced, fresh := c.replacement(peers, 1000, "10.32.0.0/24")
		errorsBefore := sum(metrics(t, n0), "overlayd_sync_errors_total")
		c.deleteLeases(replaced...)
		c.putPeers(fresh)
		peers = append(peers[1000:], fresh...)
		c.waitConverged(convergeTimeout, n0)
		requireInSync(t, n0)
		if got := sum(metrics(t, n0), "overlayd_sync_errors_total") - errorsBefore; got != 0 {
			t.Errorf("%v netlink errors during the burst", got)
		}
	})

	must(t, c.AddPods(labtest.Context(t, 10*time.Second), n0))
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
}

// replacement picks the first k peers to delete and k new peers (from
// first) to add in their place.
func (c *cluster) replacement(peers []fakePeer, k int, first string) ([]netip.Prefix, []fakePeer) {
	var gone []netip.Prefix
	for _, p := range peers[:k] {
		gone = append(gone, p.Subnet)
	}
	return gone, c.newFakePeers(netip.MustParsePrefix(first), k)
}

// TestSIGTERMKeepsTheDataPath: SIGTERM (flannel's sometimes wiped every
// route) makes overlayd exit 0 promptly, also while etcd is unreachable,
// leaving every entry in place: pods keep talking with no agent running,
// and the restarted agent finds a correct kernel and writes nothing.
func TestSIGTERMKeepsTheDataPath(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 3, pods: 1})
	c.putPeers(c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 100))
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
	n0 := c.Nodes[0]
	before := kernelsOf(c)

	for _, reachable := range []bool{true, false} {
		c.SetEtcdReachable(reachable)
		c.stop(n0, syscall.SIGTERM) // fails unless exit 0 within 10s
		requireKernels(t, c, before, fmt.Sprintf("after SIGTERM (etcd reachable: %t)", reachable))
		c.mustPingAllNow("with node0's agent stopped")
		c.SetEtcdReachable(true)
		c.start(n0)
		c.waitUp(n0)
		c.waitConverged(convergeTimeout, n0)
		time.Sleep(resyncInterval + time.Second) // a full resync too
		if w := sum(metrics(t, n0), "overlayd_sync_writes_total"); w != 0 {
			t.Errorf("restarted over a correct kernel, node0 made %v kernel writes, want none", w)
		}
		requireKernels(t, c, before, "after the restart")
	}
}

// stopMidSync runs begin (which starts a sync on n) and sends sig to n's
// agent as soon as its entry count is inside the window mid: part of the
// sync done, part not. SIGTERM must then give exit status 0 and leave
// every entry written so far. If the sync is too fast to catch, the
// agent is stopped after it and the test goes on (the restart must
// converge all the same).
func stopMidSync(t *testing.T, c *cluster, n *lab.Node, sig syscall.Signal, begin func(), mid func(entries int) bool) {
	t.Helper()
	h, err := netnsutil.Handle(n.NS)
	must(t, err)
	defer h.Close()
	begin()
	deadline := time.Now().Add(upTimeout)
	caught, at := false, 0
	for !caught && time.Now().Before(deadline) {
		if a := c.Agent(n); a != nil && a.Exited() {
			t.Fatalf("agent exited during the sync: %v", exitedError(a))
		}
		cnt, err := entryCount(h)
		caught, at = err == nil && mid(cnt), cnt
	}
	a := c.Agent(n)
	must(t, a.Signal(sig))
	if err := a.Wait(); sig == syscall.SIGTERM && err != nil {
		t.Fatalf("SIGTERM during the sync: exit %v\n%s", err, a.LogTail(20))
	}
	left, err := entryCount(h)
	must(t, err)
	if !caught {
		t.Logf("the sync on %s was too fast to catch: stopped after it, with %d kernel entries", n.Name, left)
		return
	}
	t.Logf("%v in the middle of the sync on %s, at %d kernel entries; %d left", sig, n.Name, at, left)
	if sig == syscall.SIGTERM && left < at {
		t.Fatalf("SIGTERM removed entries: %d before it, %d after", at, left)
	}
}

// entryCount counts the routes, neighbours and FDB entries on flannel.1
// (0 if it does not exist): cheap enough to poll during a sync. A dump
// interrupted by concurrent changes is an error.
func entryCount(h *netlink.Handle) (int, error) {
	l, err := h.LinkByName(lab.FlannelDevice)
	if err != nil {
		return 0, nil
	}
	routes, err := h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		return 0, err
	}
	neigh, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return 0, err
	}
	fdb, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return 0, err
	}
	return len(routes) + len(neigh) + len(fdb), nil
}

// churn changes k peers each way: removes the first k, gives the next k
// new MACs and the next k new addresses, and adds k new ones. It returns
// the peer set after the change.
func (c *cluster) churn(peers []fakePeer, k int) []fakePeer {
	c.t.Helper()
	if len(peers) < 3*k {
		c.t.Fatalf("churn %d of %d peers", k, len(peers))
	}
	var gone []netip.Prefix
	for _, p := range peers[:k] {
		gone = append(gone, p.Subnet)
	}
	c.deleteLeases(gone...)
	kept := append([]fakePeer{}, peers[k:]...)
	for i := range kept[:k] {
		kept[i].MAC = fakeMAC(c.fakes)
		c.fakes++
	}
	for i := range kept[k : 2*k] {
		kept[k+i].PublicIP = netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i%250)})
	}
	added := c.newFakePeers(netip.MustParsePrefix("10.20.0.0/24"), k)
	c.putPeers(append(kept[:2*k:2*k], added...))
	return append(kept, added...)
}

// requireInSync fails unless n's reconciler reports every peer
// programmed and its kernel counts equal to the desired ones.
func requireInSync(t *testing.T, n *lab.Node) {
	t.Helper()
	labtest.Eventually(t, convergeTimeout, n.Name+" in sync", func() error {
		s := status(t, n)
		if !s.InSync || s.Counts.PeersProgrammed != s.Counts.Peers || s.Counts.Kernel != s.Counts.Desired || s.Counts.Failing != 0 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}
