package faults

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestTwentyNodesStartAtOnce: 20 agents start at the same instant on one
// etcd, in a network with room for only 31 subnets, so that they race for
// the same candidates. Every one gets its own subnet (distinct leases,
// one per node, each matching the node's subnet file), none exits, all
// are ready, and each programs the other 19.
func TestTwentyNodesStartAtOnce(t *testing.T) {
	const nodes = 20
	network := netip.MustParsePrefix("10.244.0.0/19")
	c := newCluster(t, clusterOptions{nodes: nodes, network: network, stopped: true})
	var wg sync.WaitGroup
	gate := make(chan struct{})
	argv := make([][]string, nodes)
	for i, n := range c.Nodes {
		argv[i] = c.args(n)
	}
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if _, err := c.StartAgent(context.Background(), n, argv[i]); err != nil {
				t.Errorf("start %s: %v", n.Name, err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	for _, n := range c.Nodes {
		c.waitUp(n)
	}

	leases := c.mustLeases()
	if len(leases) != nodes {
		t.Fatalf("%d leases for %d nodes: %v", len(leases), nodes, sortedKeys(leases))
	}
	owner := map[netip.Addr]netip.Prefix{}
	for sn, l := range leases {
		if other, dup := owner[l.PublicIP]; dup {
			t.Errorf("%s holds both %s and %s", l.PublicIP, other, sn)
		}
		owner[l.PublicIP] = sn
	}
	races := 0
	for _, n := range c.Nodes {
		if got := owner[n.PublicIP]; got != n.Subnet.Lease() {
			t.Errorf("%s's subnet file says %s, its lease in etcd is %s", n.Name, n.Subnet.Lease(), got)
		}
		races += countContaining(logSince(t, n, 0), "created the same subnet first")
	}
	t.Logf("%d nodes got %d distinct subnets of %s; %d creation races lost and retried", nodes, len(leases), network, races)
	c.waitConverged(convergeTimeout)
	labtest.RequireAlive(c.t, c.Lab)
}

// TestOutOfSubnets: a network with room for three subnets and a fourth
// node. The fourth exits at once with a non-zero status and one clear
// "out of subnets" error naming the network; it creates no lease, writes
// no subnet file and sends no request storm (it is gone; its service
// manager restarts it with a backoff). The others are undisturbed, and
// when a subnet is freed the fourth node gets it.
func TestOutOfSubnets(t *testing.T) {
	t.Parallel()
	network := netip.MustParsePrefix("10.250.0.0/22") // SubnetMin skips the first /24: 3 left
	c := newCluster(t, clusterOptions{nodes: 4, network: network, stopped: true})
	for _, n := range c.Nodes[:3] {
		c.start(n)
	}
	for _, n := range c.Nodes[:3] {
		c.waitUp(n)
	}
	c.waitConverged(convergeTimeout, c.Nodes[:3]...)
	before := kernelsOf(c, c.Nodes[:3]...)
	n3 := c.Nodes[3]

	a := c.start(n3)
	if err := labtest.WaitExit(t, a, convergeTimeout, "node3 without a subnet"); err == nil {
		t.Fatal("node3 exited 0 without a subnet")
	}
	lines := logSince(t, n3, 0)
	if got := countContaining(lines, "out of subnets", network.String()); got != 1 {
		t.Errorf("node3 logged %d lines with \"out of subnets\" and %s, want one:\n%s", got, network, strings.Join(lines, "\n"))
	}
	if len(lines) > 25 {
		t.Errorf("node3 logged %d lines before giving up, want a short log:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if _, err := lab.ReadSubnetEnv(n3.SubnetFile); err == nil {
		t.Error("node3 wrote a subnet file without a lease")
	}
	if got := len(c.mustLeases()); got != 3 {
		t.Errorf("%d leases after node3 failed, want 3", got)
	}
	for _, n := range c.Nodes[:3] {
		if d := before[n.Name].diff(c.mustKernel(n)); d != "" {
			t.Errorf("%s entries changed:%s", n.Name, d)
		}
	}
	labtest.RequireAlive(c.t, c.Lab, c.Nodes[:3]...)

	// Decommission node2 (stop it, delete its lease): node3 now fits.
	n2 := c.Nodes[2]
	c.stop(n2, syscall.SIGTERM)
	c.deleteLeases(n2.Subnet.Lease())
	c.start(n3)
	c.waitUp(n3)
	if n3.Subnet.Lease() != n2.Subnet.Lease() {
		t.Errorf("node3 got %s, want the freed %s", n3.Subnet.Lease(), n2.Subnet.Lease())
	}
}
