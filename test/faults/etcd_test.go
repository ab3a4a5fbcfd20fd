package faults

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestEtcdRestartedWhileRunning: etcd is killed and started again on its
// data (on another port, behind the same proxy address). Routes never
// move, no agent exits, every lease is still there, and the watches work
// again afterwards: a peer added after the restart is programmed
// everywhere and removed again.
func TestEtcdRestartedWhileRunning(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 3, pods: 1})
	before := kernelsOf(c)
	leases := c.mustLeases()

	c.restartEtcd()
	c.mustPingAllNow("right after the etcd restart")
	requireKernels(t, c, before, "right after the etcd restart")

	ghost := c.newFakePeers(netip.MustParsePrefix("10.244.250.0/24"), 1)
	c.putPeers(ghost)
	c.waitConverged(reconnectTimeout)
	c.deleteLeases(ghost[0].Subnet)
	c.waitConverged(convergeTimeout)
	requireKernels(t, c, before, "after a peer came and went")
	labtest.RequireAlive(c.t, c.Lab)
	if got := c.mustLeases(); !mapsEqual(got, leases) {
		t.Fatalf("leases changed across the etcd restart:\nbefore %v\nafter  %v", leases, got)
	}
	c.mustPingAll()
}

// TestEtcdUnreachableLongerThanResync: every node loses etcd for several
// resync intervals. Routes stay (traffic never stops), no agent exits or
// turns unhealthy; meanwhile node1's lease expires (deleted in etcd while
// node1 cannot see it, which is what a TTL running out looks like). When
// etcd is back, node1 takes the same subnet again with a fresh TTL, and
// every kernel matches etcd.
func TestEtcdUnreachableLongerThanResync(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 3, pods: 1})
	before := kernelsOf(c)
	n1 := c.Nodes[1]
	subnetBefore := n1.Subnet

	c.SetEtcdReachable(false)
	c.deleteLeases(n1.Subnet.Lease())
	outage := 4 * resyncInterval
	during(t, outage, "while etcd is unreachable", func() error {
		for _, n := range c.Nodes {
			if c.Agent(n).Exited() {
				return exitedError(c.Agent(n))
			}
		}
		return nil
	})
	requireKernels(t, c, before, "after an etcd outage of 4 resync intervals")
	c.mustPingAllNow("at the end of the etcd outage")
	requireHealthy(t, c)

	c.SetEtcdReachable(true)
	labtest.Eventually(t, reconnectTimeout, "node1 takes its subnet again", func() error {
		l, ttl, err := c.nodeLease(n1)
		if err != nil {
			return err
		}
		if l.PublicIP != n1.PublicIP || ttl < 23*time.Hour {
			return fmt.Errorf("lease is %+v with TTL %s, want PublicIP %s and a fresh 24h TTL", l, ttl, n1.PublicIP)
		}
		return nil
	})
	c.waitConverged(reconnectTimeout)
	labtest.RequireAlive(c.t, c.Lab)
	if env, err := lab.ReadSubnetEnv(n1.SubnetFile); err != nil || env != subnetBefore {
		t.Fatalf("node1 subnet file %+v (%v), want %+v unchanged", env, err, subnetBefore)
	}
	requireKernels(t, c, before, "after etcd came back")
	c.mustPingAll()
}

// TestExpiredLeaseTakenByAnotherNode: while node1 cannot reach etcd its
// lease expires and another host takes the subnet. When etcd is back,
// node1 must not keep using the subnet (flannel's two hosts sharing one
// subnet): it exits with an error naming the loss, the other nodes route
// the subnet to its new holder, and node1, restarted, gets a different
// subnet.
func TestExpiredLeaseTakenByAnotherNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 3})
	c.waitConverged(convergeTimeout)
	n1 := c.Nodes[1]
	lost := n1.Subnet.Lease()

	c.SetEtcdReachable(false)
	c.deleteLeases(lost)
	thief := fakePeer{Subnet: lost, PublicIP: netip.MustParseAddr("192.0.2.99"), MAC: fakeMAC(99999)}
	c.putPeers([]fakePeer{thief})
	time.Sleep(resyncInterval)
	c.SetEtcdReachable(true)

	a := c.Agent(n1)
	if err := labtest.WaitExit(t, a, reconnectTimeout, "node1 on a subnet another host holds"); err == nil {
		t.Fatalf("node1 exited with status 0 after losing its subnet; want an error")
	}
	if !strings.Contains(a.LogTail(10), "lease lost to another node") {
		t.Errorf("node1's last words do not name the loss:\n%s", a.LogTail(10))
	}
	c.waitConverged(reconnectTimeout, c.Nodes[0], c.Nodes[2])

	c.start(n1)
	c.waitUp(n1)
	if got := n1.Subnet.Lease(); got == lost {
		t.Fatalf("restarted node1 took %s, which 192.0.2.99 holds", got)
	}
	leases := c.mustLeases()
	if leases[lost].PublicIP != thief.PublicIP {
		t.Fatalf("%s now belongs to %s, want the new holder %s", lost, leases[lost].PublicIP, thief.PublicIP)
	}
	c.waitConverged(convergeTimeout)
}

// TestLeaseExpiredWhileNodeDown: node1 is down longer than its lease
// lives (its lease is deleted while it is stopped). Restarted, it takes
// the same subnet again from its subnet file, with the same VTEP MAC, and
// every node converges.
func TestLeaseExpiredWhileNodeDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 3, pods: 1})
	c.waitConverged(convergeTimeout)
	n1 := c.Nodes[1]
	subnetBefore, macBefore := n1.Subnet, c.nodeMAC(n1)
	c.stop(n1, syscall.SIGTERM)
	c.deleteLeases(n1.Subnet.Lease())
	c.waitConverged(convergeTimeout, c.Nodes[0], c.Nodes[2])
	c.start(n1)
	c.waitUp(n1)
	if n1.Subnet != subnetBefore {
		t.Fatalf("node1 came back on %s, want its previous %s", n1.Subnet.Subnet, subnetBefore.Subnet)
	}
	if mac := c.nodeMAC(n1); mac != macBefore {
		t.Errorf("node1 came back with VTEP MAC %s, want %s", mac, macBefore)
	}
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
}

// kernelsOf reads the entries of the given nodes (default: all).
func kernelsOf(c *cluster, nodes ...*lab.Node) map[string]kernelState {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Nodes
	}
	out := map[string]kernelState{}
	for _, n := range nodes {
		out[n.Name] = c.mustKernel(n)
	}
	return out
}

// requireKernels fails unless every node still has exactly the entries
// it had before.
func requireKernels(t *testing.T, c *cluster, before map[string]kernelState, when string) {
	t.Helper()
	for _, n := range c.Nodes {
		if d := before[n.Name].diff(c.mustKernel(n)); d != "" {
			t.Fatalf("%s: %s entries changed:%s", when, n.Name, d)
		}
	}
}

// requireHealthy fails unless every agent answers /healthz and /readyz.
func requireHealthy(t *testing.T, c *cluster) {
	t.Helper()
	for _, n := range c.Nodes {
		for _, path := range []string{"/healthz", "/readyz"} {
			code, body, err := lab.GetIn(labtest.Context(t, 5*time.Second), n.NS, n.HealthzURL()+path)
			if err != nil || code != 200 {
				t.Fatalf("%s %s: %d %q %v", n.Name, path, code, body, err)
			}
		}
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[netip.Prefix]V) []netip.Prefix {
	keys := make([]netip.Prefix, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return keys
}
