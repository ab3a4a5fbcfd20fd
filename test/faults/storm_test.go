package faults

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// stormPeers is the size of the lease storm.
const stormPeers = 5000

// stormRSSLimit bounds an agent's peak resident memory through the storm:
// the events are queued, not the memory unbounded.
const stormRSSLimit = 256 << 20

// TestLeaseStormWhileRestarting: 5,000 leases are created and then
// deleted as fast as etcd takes them (100 per transaction) while one node
// is restarting (killed, started again at once) and the other runs.
// Both end with exactly what etcd asks for (the two nodes' own leases),
// neither exits, and each agent's peak RSS (VmHWM) stays under
// stormRSSLimit; the figures are logged.
func TestLeaseStormWhileRestarting(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 2, pods: 1, network: netip.MustParsePrefix("10.224.0.0/11")})
	c.waitConverged(convergeTimeout)
	peers := c.newFakePeers(netip.MustParsePrefix("10.230.0.0/24"), stormPeers)
	subnets := make([]netip.Prefix, len(peers))
	for i, p := range peers {
		subnets[i] = p.Subnet
	}
	n0 := c.Nodes[0]
	c.stop(n0, syscall.SIGKILL)
	c.start(n0)
	start := time.Now()
	c.putPeers(peers)
	created := time.Since(start)
	c.deleteLeases(subnets...)
	t.Logf("%d leases created in %s and deleted in %s", stormPeers, created.Round(time.Millisecond), (time.Since(start) - created).Round(time.Millisecond))
	c.waitUp(n0)
	c.waitConverged(reconnectTimeout)
	labtest.RequireAlive(c.t, c.Lab)
	for _, n := range c.Nodes {
		hwm, err := peakRSS(c.Agent(n))
		must(t, err)
		t.Logf("%s: peak RSS %d MiB", n.Name, hwm>>20)
		if hwm > stormRSSLimit {
			t.Errorf("%s: peak RSS %d MiB through the storm, over %d MiB", n.Name, hwm>>20, stormRSSLimit>>20)
		}
	}
	c.mustPingAll()
}

// peakRSS is the agent process's VmHWM in bytes.
func peakRSS(a *lab.Agent) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.Pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", a.Pid())
}
