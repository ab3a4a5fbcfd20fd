package faults

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/labtest"
)

// staleViewBound is the longest a node may keep serving the view of an
// etcd member that lost quorum (docs/reliability.md explains the sum):
// the member notices it has no leader after an election timeout (1 s),
// etcd cancels require-leader watches after 3 more, the watch backs off
// (at most 10 s when the failures repeat) and re-lists on a healthy member.
const staleViewBound = 20 * time.Second

// TestHAPartitionedMemberIsLeft: the member serving a node's watch is cut
// off from the other two (it stays reachable, but has no quorum). The
// node must notice (its watch requires a leader) and move to a healthy
// member: a peer added and one removed through the majority reach its
// kernel within staleViewBound. The measured delays are logged.
func TestHAPartitionedMemberIsLeft(t *testing.T) {
	t.Parallel()
	c := newHACluster(t, clusterOptions{nodes: 1})
	n := c.Nodes[0]
	peers := c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 3)
	c.putPeers(peers[:2])
	c.waitConverged(convergeTimeout)
	restarts := sum(metrics(t, n), "overlayd_subnet_watch_restarts_total")

	x := c.watchedMember()
	var majority []int
	for i := range c.etcd.Members {
		if i != x {
			majority = append(majority, i)
		}
	}
	cli, err := c.etcd.Client(majority...)
	must(t, err)
	defer cli.Close()
	all := c.cli
	c.cli = cli // the test's own reads and writes avoid the minority
	defer func() { c.cli = all }()

	must(t, c.etcd.Members[x].Partition(labtest.Context(t, 10*time.Second), true))
	cut := time.Now()
	added := peers[2]
	value, err := leaseValue(added.PublicIP, added.MAC)
	must(t, err)
	var put time.Time
	c.retry("put a peer through the majority", func(ctx context.Context) error {
		_, err := cli.Put(ctx, leaseKey(added.Subnet), value)
		put = time.Now()
		return err
	})
	seen := c.waitRoute(n, added.Subnet, true, staleViewBound)
	t.Logf("member %s partitioned; a peer put through the majority %s later reached the node %s after the put (%s after the cut)",
		c.etcd.Members[x].Name, put.Sub(cut).Round(time.Millisecond), seen.Sub(put).Round(time.Millisecond), seen.Sub(cut).Round(time.Millisecond))

	c.retry("delete a peer through the majority", func(ctx context.Context) error {
		_, err := cli.Delete(ctx, leaseKey(peers[0].Subnet))
		put = time.Now()
		return err
	})
	gone := c.waitRoute(n, peers[0].Subnet, false, convergeTimeout)
	t.Logf("after moving: a removal reached the node %s after the delete", gone.Sub(put).Round(time.Millisecond))
	if got := sum(metrics(t, n), "overlayd_subnet_watch_restarts_total"); got <= restarts {
		t.Errorf("watch restarts %v -> %v: the node never left the partitioned member", restarts, got)
	}
	c.waitConverged(convergeTimeout)

	must(t, c.etcd.Members[x].Partition(labtest.Context(t, 10*time.Second), false))
	must(t, c.etcd.WaitHealthy(labtest.Context(t, reconnectTimeout)))
	c.cli = all
	c.putPeers(c.newFakePeers(netip.MustParsePrefix("10.244.200.0/24"), 1))
	c.waitConverged(convergeTimeout)
	labtest.RequireAlive(c.t, c.Lab)
}

// TestHAKillLeader: the leader member is killed a few seconds before the
// nodes' first renewal falls due, and peers are added and removed during
// the election. The renewal goes through another member (a fresh 24 h
// lease), the watches resume without missing a change (every kernel
// equals etcd) and nothing is written twice (each node writes exactly
// the changed peers' entries).
func TestHAKillLeader(t *testing.T) {
	t.Parallel()
	c := newHACluster(t, clusterOptions{nodes: 2, pods: 1, extra: []string{renewMarginFlag}})
	start := time.Now()
	subnets := c.subnets()
	peers := c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 25)
	c.putPeers(peers[:20])
	c.waitConverged(convergeTimeout)
	writes, expiry := map[string]float64{}, map[string]float64{}
	for _, n := range c.Nodes {
		m := metrics(t, n)
		writes[n.Name], expiry[n.Name] = sum(m, "overlayd_sync_writes_total"), m[leaseExpiryTS]
	}

	time.Sleep(time.Until(start.Add(earliestRenewal - 4*time.Second)))
	leader := c.leader()
	c.etcd.Members[leader].Kill()
	killed := time.Now()
	c.retry("add 5 peers during the election", func(ctx context.Context) error {
		return c.txn(ctx, putOps(t, peers[20:])...)
	})
	c.retry("remove 2 peers during the election", func(ctx context.Context) error {
		return c.txn(ctx, clientv3.OpDelete(leaseKey(peers[0].Subnet)), clientv3.OpDelete(leaseKey(peers[1].Subnet)))
	})
	t.Logf("leader %s killed; the changes were committed %s later", c.etcd.Members[leader].Name, time.Since(killed).Round(time.Millisecond))
	for _, n := range c.Nodes {
		requireRenewed(t, c.cluster, n, expiry[n.Name], reconnectTimeout)
	}
	c.waitConverged(convergeTimeout)
	for _, n := range c.Nodes {
		// 5 peers added, 2 removed: a route, a neighbour and an FDB entry each.
		if got := sum(metrics(t, n), "overlayd_sync_writes_total") - writes[n.Name]; got != 21 {
			t.Errorf("%s made %v kernel writes for 7 changed peers, want 21", n.Name, got)
		}
	}
	c.restartMember(leader)
	t.Logf("new leader %s", c.etcd.Members[c.leader()].Name)
	c.requireOwnLeases(subnets)
	c.mustPingAll()
	labtest.RequireAlive(c.t, c.Lab)
}

// TestHARollingRestartWhileLeasesChurn: 100 leases are created, changed
// and deleted continuously while each member in turn is killed and
// restarted, and one node restarts too. Afterwards every kernel equals
// etcd (no missed event) and every node holds exactly its own subnet
// (none taken twice).
func TestHARollingRestartWhileLeasesChurn(t *testing.T) {
	t.Parallel()
	c := newHACluster(t, clusterOptions{nodes: 2, pods: 1})
	subnets := c.subnets()
	peers := c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 100)
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		churn(ctx, c.cli, peers, &ok, &failed)
	}()
	stopChurn := func() { cancel(); <-done }
	defer stopChurn()

	for i, m := range c.etcd.Members {
		m.Kill()
		time.Sleep(2 * time.Second)
		c.restartMember(i)
		if i == 1 {
			c.restart(c.Nodes[1], syscall.SIGTERM)
		}
		time.Sleep(time.Second)
	}
	stopChurn()
	t.Logf("churn: %d writes committed, %d failed during the restarts", ok.Load(), failed.Load())
	if ok.Load() < 100 {
		t.Errorf("only %d churn writes committed", ok.Load())
	}
	c.waitConverged(reconnectTimeout)
	c.requireOwnLeases(subnets)
	c.mustPingAll()
	labtest.RequireAlive(c.t, c.Lab)
}

// churn puts, changes (a new MAC) and deletes random peers' leases until
// ctx ends, each with its own etcd lease of a minute, counting the writes
// that committed and those that failed (a member down, an election).
func churn(ctx context.Context, cli *clientv3.Client, peers []fakePeer, ok, failed *atomic.Int64) {
	present := map[int]bool{}
	for step := 0; ctx.Err() == nil; step++ {
		i := rand.IntN(len(peers))
		p := peers[i]
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		if present[i] && rand.IntN(2) == 0 {
			_, err = cli.Delete(wctx, leaseKey(p.Subnet))
			if err == nil {
				present[i] = false
			}
		} else {
			err = churnPut(wctx, cli, p, step)
			if err == nil {
				present[i] = true
			}
		}
		cancel()
		if err != nil {
			failed.Add(1)
			continue
		}
		ok.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// churnPut writes p with a MAC that changes with step, under a fresh
// one-minute etcd lease.
func churnPut(ctx context.Context, cli *clientv3.Client, p fakePeer, step int) error {
	grant, err := cli.Grant(ctx, 60)
	if err != nil {
		return err
	}
	value, err := leaseValue(p.PublicIP, fakeMAC(0x100000+step))
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, leaseKey(p.Subnet), value, clientv3.WithLease(grant.ID))
	return err
}

// TestHAAllMembersDownPastRenewal: all three members are down from
// shortly before the nodes' first renewal falls due until well after it,
// and one node restarts meanwhile. Routes and traffic stay; when the
// cluster is back the running node renews (a fresh 24 h lease) and the
// restarted one comes up on the same subnet with the same MAC.
func TestHAAllMembersDownPastRenewal(t *testing.T) {
	t.Parallel()
	c := newHACluster(t, clusterOptions{nodes: 2, pods: 1, extra: []string{renewMarginFlag}})
	start := time.Now()
	subnets := c.subnets()
	c.waitConverged(convergeTimeout)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	mac1 := c.nodeMAC(n1)
	before := kernelsOf(c.cluster)
	expiry := metrics(t, n0)[leaseExpiryTS]

	time.Sleep(time.Until(start.Add(earliestRenewal - 10*time.Second)))
	c.etcd.Stop()
	c.stop(n1, syscall.SIGTERM)
	c.start(n1)
	time.Sleep(time.Until(start.Add(earliestRenewal + 10*time.Second)))
	requireKernels(t, c.cluster, before, "with every etcd member down past the renewal")
	c.mustPingAllNow("with every etcd member down")
	labtest.RequireAlive(c.t, c.Lab)

	ctx := labtest.Context(t, reconnectTimeout)
	for _, m := range c.etcd.Members {
		must(t, m.Restart(ctx))
	}
	must(t, c.etcd.WaitHealthy(ctx))
	requireRenewed(t, c.cluster, n0, expiry, reconnectTimeout)
	c.waitUp(n1)
	if got := c.nodeMAC(n1); got != mac1 {
		t.Errorf("%s came back with VTEP MAC %s, had %s", n1.Name, got, mac1)
	}
	c.requireOwnLeases(subnets)
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
	labtest.RequireAlive(c.t, c.Lab)
}

// txn commits ops in one transaction.
func (c *cluster) txn(ctx context.Context, ops ...clientv3.Op) error {
	_, err := c.cli.Txn(ctx).Then(ops...).Commit()
	return err
}

// putOps are reservations (no TTL) for peers.
func putOps(t *testing.T, peers []fakePeer) []clientv3.Op {
	var ops []clientv3.Op
	for _, p := range peers {
		v, err := leaseValue(p.PublicIP, p.MAC)
		must(t, err)
		ops = append(ops, clientv3.OpPut(leaseKey(p.Subnet), v))
	}
	return ops
}
