package faults

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// soakFault injects one fault into the cluster; the soak then waits for
// convergence and traffic.
type soakFault struct {
	name   string
	inject func(c *cluster, rng *rand.Rand, n *lab.Node)
}

// soakFaults are the faults of the matrix, with random parameters.
func soakFaults() []soakFault {
	return []soakFault{
		{"etcd unreachable with peer churn", func(c *cluster, rng *rand.Rand, _ *lab.Node) {
			c.SetEtcdReachable(false)
			c.soakChurn(rng)
			time.Sleep(time.Duration(1+rng.IntN(3)) * resyncInterval)
			c.SetEtcdReachable(true)
		}},
		{"etcd restarted", func(c *cluster, _ *rand.Rand, _ *lab.Node) { c.restartEtcd() }},
		{"etcd compacted while unreachable", func(c *cluster, rng *rand.Rand, _ *lab.Node) {
			c.SetEtcdReachable(false)
			c.soakChurn(rng)
			c.compact()
			c.SetEtcdReachable(true)
		}},
		{"routes and neighbours deleted by hand", func(c *cluster, _ *rand.Rand, n *lab.Node) {
			netnsutil.MustExec(c.t, n.NS, "ip", "route", "flush", "dev", lab.FlannelDevice)
			netnsutil.MustExec(c.t, n.NS, "ip", "neigh", "flush", "dev", lab.FlannelDevice, "nud", "permanent")
		}},
		{"VXLAN device deleted", func(c *cluster, _ *rand.Rand, n *lab.Node) {
			netnsutil.MustExec(c.t, n.NS, "ip", "link", "del", lab.FlannelDevice)
		}},
		{"agent SIGKILLed and restarted", func(c *cluster, _ *rand.Rand, n *lab.Node) { c.restart(n, syscall.SIGKILL) }},
		{"agent SIGTERMed and restarted", func(c *cluster, _ *rand.Rand, n *lab.Node) { c.restart(n, syscall.SIGTERM) }},
		{"underlay link flapped", func(c *cluster, rng *rand.Rand, n *lab.Node) {
			def := strings.Fields(netnsutil.MustExec(c.t, n.NS, "ip", "route", "show", "default"))
			netnsutil.MustExec(c.t, n.NS, "ip", "link", "set", n.Iface, "down")
			time.Sleep(time.Duration(500+rng.IntN(4000)) * time.Millisecond)
			netnsutil.MustExec(c.t, n.NS, "ip", "link", "set", n.Iface, "up")
			if strings.TrimSpace(netnsutil.MustExec(c.t, n.NS, "ip", "route", "show", "default")) == "" {
				netnsutil.MustExec(c.t, n.NS, append([]string{"ip", "route", "add"}, def...)...)
			}
		}},
		{"peer churn burst", func(c *cluster, rng *rand.Rand, _ *lab.Node) { c.soakChurn(rng) }},
	}
}

// TestSoak (long: -soak=DURATION) injects the faults of the matrix in a
// random order, on random nodes, for the given duration. After each the
// cluster must converge (every kernel equal to etcd), every pod reach
// every other and every agent run; at the end the logs must be quiet.
func TestSoak(t *testing.T) {
	d := requireSoak(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak for %s, seed %d", d, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := newCluster(t, clusterOptions{nodes: 4, pods: 1})
	c.putPeers(c.newFakePeers(netip.MustParsePrefix("10.244.200.0/24"), 40))
	c.waitConverged(convergeTimeout)
	faults, counts := soakFaults(), map[string]int{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		f := faults[rng.IntN(len(faults))]
		n := c.Nodes[rng.IntN(len(c.Nodes))]
		began := time.Now()
		f.inject(c, rng, n)
		c.waitConverged(reconnectTimeout)
		labtest.RequireAlive(c.t, c.Lab)
		c.mustPingAll()
		counts[f.name]++
		t.Logf("%-40s on %s: recovered in %s", f.name, n.Name, time.Since(began).Round(time.Millisecond))
	}
	t.Logf("faults injected: %v", counts)
	requireQuietLogs(t, c, 3*resyncInterval)
}

// soakChurn removes, changes and adds a few fake peers.
func (c *cluster) soakChurn(rng *rand.Rand) {
	c.t.Helper()
	leases := c.mustLeases()
	var fakes []netip.Prefix
	for _, sn := range sortedKeys(leases) {
		if strings.HasPrefix(leases[sn].MAC, "0e:fa:ce:") {
			fakes = append(fakes, sn)
		}
	}
	rng.Shuffle(len(fakes), func(i, j int) { fakes[i], fakes[j] = fakes[j], fakes[i] })
	k := min(len(fakes)/4, 1+rng.IntN(10))
	c.deleteLeases(fakes[:k]...)
	changed := make([]fakePeer, 0, k)
	for _, sn := range fakes[k : 2*k] {
		changed = append(changed, fakePeer{Subnet: sn, PublicIP: leases[sn].PublicIP, MAC: fakeMAC(c.fakes)})
		c.fakes++
	}
	c.putPeers(append(changed, c.newFakePeers(netip.MustParsePrefix("10.244.200.0/24"), k)...))
}

// requireQuietLogs fails if any agent logs more than a couple of lines
// in a quiet period of length d: a steady state must not fill disks.
func requireQuietLogs(t *testing.T, c *cluster, d time.Duration) {
	t.Helper()
	marks := map[string]int64{}
	for _, n := range c.Nodes {
		marks[n.Name] = logMark(t, n)
	}
	time.Sleep(d)
	for _, n := range c.Nodes {
		if lines := logSince(t, n, marks[n.Name]); len(lines) > 2 {
			t.Errorf("%s logged %d lines in %s of quiet:\n%s", n.Name, len(lines), d, strings.Join(lines, "\n"))
		}
	}
}
