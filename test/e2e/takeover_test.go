package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// swapPingInterval is how often the pods on the swapped node ping across
// the overlay during a swap (as `ping -i 0.01`).
const swapPingInterval = 10 * time.Millisecond

// swapSettle is how long the pings go on after the new daemon is ready:
// long enough for its first full sync and an iptables resync (flanneld's
// default --iptables-resync is 5s; overlayd's first check is at start).
const swapSettle = 6 * time.Second

// nodeIdentity is what must survive a swap of daemons on a node.
type nodeIdentity struct {
	Subnet   string   // the lease, from the subnet file
	DevMAC   string   // flannel.1's address
	LeaseMAC string   // VtepMAC in the node's lease
	Device   string   // flannel.1's VXLAN attributes
	Rules    []string // iptables-save -A lines, sorted
}

func identityOf(t *testing.T, c *mixedCluster, n *lab.Node) nodeIdentity {
	t.Helper()
	ctx := labtest.Context(t, 10*time.Second)
	env, err := c.WaitSubnetFile(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	leaseMAC, _ := leaseOf(t, c.cluster, n)
	link := netnsutil.MustExec(t, n.NS, "ip", "-d", "link", "show", "dev", lab.FlannelDevice)
	id := nodeIdentity{Subnet: env.Lease().String(), LeaseMAC: leaseMAC, Rules: ruleLines(t, n)}
	for _, line := range strings.Split(link, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "link/ether":
			id.DevMAC = f[1]
		case len(f) >= 1 && f[0] == "vxlan":
			id.Device += " " + vxlanAttrs(f)
		case slices.Contains(f, "mtu"):
			id.Device = "mtu " + f[slices.Index(f, "mtu")+1]
		}
	}
	return id
}

// vxlanAttrs is the identity part of `ip -d link`'s vxlan line: id,
// local, dev, ports, learning, ttl and ageing, up to the checksum settings
// (which a daemon may tune without making the device another one).
func vxlanAttrs(fields []string) string {
	end := len(fields)
	for i, f := range fields {
		if strings.Contains(f, "csum") {
			end = i
			break
		}
	}
	return strings.Join(fields[:end], " ")
}

// ruleLines is the node's iptables-save, the -A lines only, sorted; it
// fails the test when a rule appears twice. The raw table is left out of
// what is returned (still checked for duplicates): it holds only overlayd's
// own OVERLAYD-NOTRACK exemption (--tx-checksum-offload=auto), which
// flanneld has no rule for and leaves alone when it takes over again.
func ruleLines(t *testing.T, n *lab.Node) []string {
	t.Helper()
	var rules []string
	table := ""
	for _, line := range strings.Split(netnsutil.MustExec(t, n.NS, "iptables-save"), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line
		case strings.HasPrefix(line, "-A "):
			rules = append(rules, table+" "+line)
		}
	}
	slices.Sort(rules)
	for i := 1; i < len(rules); i++ {
		if rules[i] == rules[i-1] {
			t.Errorf("%s: duplicate iptables rule: %s", n.Name, rules[i])
		}
	}
	return slices.DeleteFunc(rules, func(r string) bool { return strings.HasPrefix(r, "*raw ") })
}

// swapStreams are the continuous pings of a swap: the swapped node's
// first pod to the first pod of every other node, and back.
type swapStreams struct {
	names   []string
	streams []*lab.PingStream
}

func startSwapStreams(t *testing.T, l *lab.Lab, swapped *lab.Node) *swapStreams {
	t.Helper()
	s := &swapStreams{}
	local := swapped.Pods[0]
	for _, n := range l.Nodes {
		if n == swapped {
			continue
		}
		remote := n.Pods[0]
		for _, pair := range [][2]*lab.Pod{{local, remote}, {remote, local}} {
			st, err := lab.StartPingStream(pair[0].NS, pair[1].IP, swapPingInterval)
			if err != nil {
				t.Fatal(err)
			}
			s.names = append(s.names, fmt.Sprintf("%s -> %s", pair[0], pair[1]))
			s.streams = append(s.streams, st)
		}
	}
	t.Cleanup(func() { s.stop() }) // a no-op once stopped
	return s
}

// stop ends every stream at once and returns the stats, in the order of
// names.
func (s *swapStreams) stop() []lab.PingStats {
	stats := make([]lab.PingStats, len(s.streams))
	var wg sync.WaitGroup
	for i, st := range s.streams {
		wg.Go(func() { stats[i] = st.Stop(500 * time.Millisecond) })
	}
	wg.Wait()
	s.streams = nil
	return stats
}

// stopAndCountLost stops every stream, logs each one's stats under what
// and returns the total number of echoes lost.
func (s *swapStreams) stopAndCountLost(t *testing.T, what string) int {
	t.Helper()
	lost := 0
	for i, st := range s.stop() {
		t.Logf("%s: %s: %s", what, s.names[i], st)
		lost += st.LostCount()
	}
	return lost
}

// swapDaemon stops the node's daemon with SIGTERM and starts the other
// kind in its place while its pods ping across the overlay; it returns the
// total number of echoes lost, having logged each stream's count.
func swapDaemon(t *testing.T, c *mixedCluster, n *lab.Node, to agentKind) int {
	t.Helper()
	streams := startSwapStreams(t, c.Lab, n)
	time.Sleep(300 * time.Millisecond) // a baseline before the swap
	old := c.Agent(n)
	if err := old.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("%s: the old daemon did not exit 0 on SIGTERM: %v", n.Name, err)
	}
	stopped := time.Now()
	c.startKind(n, to)
	ctx := labtest.Context(t, 30*time.Second)
	if err := c.WaitReady(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s ready %s after the old daemon exited", n.Name, to, time.Since(stopped).Round(time.Millisecond))
	time.Sleep(swapSettle)
	return streams.stopAndCountLost(t, fmt.Sprintf("swap to %s on %s", to, n.Name))
}

// checkSameIdentity fails the test unless the node kept its subnet, VTEP
// MAC (device and lease), device attributes and exactly its iptables rules.
func checkSameIdentity(t *testing.T, what string, before, after nodeIdentity) {
	t.Helper()
	if after.Subnet != before.Subnet {
		t.Errorf("%s: subnet %s, was %s", what, after.Subnet, before.Subnet)
	}
	if after.DevMAC != before.DevMAC || after.LeaseMAC != before.LeaseMAC || after.LeaseMAC != after.DevMAC {
		t.Errorf("%s: VTEP MAC device %s lease %s, was device %s lease %s", what, after.DevMAC, after.LeaseMAC, before.DevMAC, before.LeaseMAC)
	}
	if after.Device != before.Device {
		t.Errorf("%s: flannel.1 %q, was %q", what, after.Device, before.Device)
	}
	if !slices.Equal(after.Rules, before.Rules) {
		t.Errorf("%s: iptables rules changed:\nbefore:\n%s\nafter:\n%s", what, strings.Join(before.Rules, "\n"), strings.Join(after.Rules, "\n"))
	}
}

// checkAdoptedWithoutWrites fails the test unless overlayd, in sync on n,
// took flanneld's kernel entries and iptables rules over as they were:
// no neighbour, FDB or route written or deleted, and its iptables check
// found every chain in place (no repair).
func checkAdoptedWithoutWrites(t *testing.T, n *lab.Node) {
	t.Helper()
	labtest.Eventually(t, 10*time.Second, "overlayd in sync on "+n.Name, func() error {
		if labtest.Metric(t, n, "overlayd_sync_in_sync") != 1 || metricSum(t, n, "overlayd_iptables_resyncs_total") < 1 {
			return fmt.Errorf("not in sync or iptables not checked yet")
		}
		return nil
	})
	if w := kernelWrites(t, n); w != 0 {
		t.Errorf("overlayd made %v kernel writes over flanneld's entries, want 0", w)
	}
	if r := metricSum(t, n, "overlayd_iptables_repairs_total"); r != 0 {
		t.Errorf("overlayd repaired flanneld's iptables chains %v times, want 0", r)
	}
}

// metricSum adds up every series of the metric name on n's /metrics (0
// when none is exposed yet).
func metricSum(t *testing.T, n *lab.Node, name string) float64 {
	t.Helper()
	status, body, err := lab.GetIn(labtest.Context(t, 5*time.Second), n.NS, "http://127.0.0.1:9473/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("metrics of %s: status %d, %v", n.Name, status, err)
	}
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || (f[0] != name && !strings.HasPrefix(f[0], name+"{")) {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("metrics of %s: %q", n.Name, line)
		}
		sum += v
	}
	return sum
}

// TestTakeoverFromFlanneldAndBack swaps the daemons in place on a node of
// a cluster with an overlayd peer and a flanneld peer: flanneld is stopped
// with SIGTERM and overlayd started on the same node, then the reverse.
// Each time the node keeps its subnet, VTEP MAC, device and iptables rules
// (no duplicates), the mesh stays whole, and pods pinging across the
// overlay every 10 ms during the swap lose nothing. overlayd adopts
// flanneld's state as it is: no kernel entry or iptables chain rewritten.
//
// The pings do see a disruption when there is one: with flannel.1 deleted
// between the two daemons (as by a daemon that recreated the device), one
// run lost 10 echoes per stream while overlayd recreated it with the same
// MAC, and 18 while flanneld did, with a new random MAC (etcd mode) that
// every peer had to reprogram; see docs/flanneld-interop.md.
func TestTakeoverFromFlanneldAndBack(t *testing.T) {
	c := startMixedCluster(t, 1, kindFlanneld, kindOverlayd, kindFlanneld)
	c.mustPingAll()
	n := c.Nodes[0]
	start := identityOf(t, c, n)
	t.Logf("%s under flanneld: subnet %s, VTEP MAC %s, %s, %d iptables rules", n.Name, start.Subnet, start.DevMAC, start.Device, len(start.Rules))

	for _, step := range []agentKind{kindOverlayd, kindFlanneld} {
		lost := swapDaemon(t, c, n, step)
		checkSameIdentity(t, "after the swap to "+string(step), start, identityOf(t, c, n))
		c.mustPingAll()
		if step == kindOverlayd {
			checkAdoptedWithoutWrites(t, n)
		}
		t.Logf("swap loss: to %s on %s, %d echoes lost in total", step, n.Name, lost)
		if lost != 0 {
			t.Errorf("swap to %s on %s lost %d echoes, want 0", step, n.Name, lost)
		}
	}
	if t.Failed() {
		t.Logf("%s: identity at the start: %+v", n.Name, start)
	}
}
