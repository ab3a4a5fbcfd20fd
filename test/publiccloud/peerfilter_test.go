package publiccloud

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Names the peer filter installs (iptables/peerfilter.go).
const (
	peerChain = "OVERLAYD-VXLAN"
	peerSet   = "overlayd-vxlan-peers"
)

// TestVXLANPeerFilterDropsStrangers: with --vxlan-peer-filter a host on
// the underlay that is not a peer cannot inject frames into the pod
// network through UDP 8472, while peers are unaffected; restarted without
// the flag, overlayd removes the chain, its jump and the set, and the
// same packet then reaches the pod (so the filter is what dropped it).
func TestVXLANPeerFilterDropsStrangers(t *testing.T) {
	l := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1, Topology: lab.Flat}, "--vxlan-peer-filter")
	n0, n1 := l.Nodes[0], l.Nodes[1]
	ctx := labtest.Context(t, 50*time.Second)
	labtest.WaitFor(t, convergeTimeout, "the peer filter in place on node0", func() (bool, string) {
		set, err := netnsutil.Exec(ctx, n0.NS, "ipset", "list", peerSet)
		return err == nil && strings.Contains(set, n1.UnderlayIP.String()), set
	})
	attacker := labtest.AddAttacker(t, l)
	// A few tries: the first ping from a new namespace waits for ARP, and a
	// loaded machine can take longer than one ping's second for that.
	var err error
	for try := 0; try < 3; try++ {
		if err = lab.PingFrom(ctx, attacker, n0.UnderlayIP); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the attacker is not on the underlay: %v", err)
	}
	frame := labtest.CraftedVXLAN(t, ctx, l, n0, n1)
	target := n0.Pods[0]

	dropsBefore := dropCount(t, ctx, n0)
	if seen := labtest.InjectAndWatch(t, attacker, n0, target, frame); seen {
		t.Fatalf("pod %s received the injected frame despite the filter", target)
	}
	if got := dropCount(t, ctx, n0); got < dropsBefore+labtest.InjectCount {
		t.Errorf("%s DROP counter went from %d to %d, want +%d", peerChain, dropsBefore, got, labtest.InjectCount)
	}
	pingAll(t, l)

	if err := l.Agent(n0).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop overlayd on node0: %v", err)
	}
	startAgent(t, l, n0)
	labtest.WaitUp(t, l, n0, upTimeout)
	labtest.WaitFor(t, convergeTimeout, "the peer filter removed from node0", func() (bool, string) {
		return peerFilterGone(ctx, n0)
	})
	if seen := labtest.InjectAndWatch(t, attacker, n0, target, frame); !seen {
		t.Errorf("without the filter the injected frame did not reach pod %s either: the test's frame is wrong", target)
	}
	pingAll(t, l)
}

// dropCount reads the packet counter of the DROP rule in OVERLAYD-VXLAN.
func dropCount(t *testing.T, ctx context.Context, n *lab.Node) int {
	t.Helper()
	out, err := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-L", peerChain, "-n", "-v", "-x")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" {
			count, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("DROP rule counter %q: %v", f[0], err)
			}
			return count
		}
	}
	t.Fatalf("%s on %s has no DROP rule:\n%s", peerChain, n.Name, out)
	return 0
}

// peerFilterGone: no chain, no jump from INPUT, no set.
func peerFilterGone(ctx context.Context, n *lab.Node) (bool, string) {
	chain, chainErr := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-S", peerChain)
	input, err := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-S", "INPUT")
	if err != nil {
		return false, err.Error()
	}
	sets, err := netnsutil.Exec(ctx, n.NS, "ipset", "list", "-n")
	if err != nil {
		return false, err.Error()
	}
	gone := chainErr != nil && !strings.Contains(input, peerChain) && !strings.Contains(sets, peerSet)
	return gone, fmt.Sprintf("iptables -S %s: %v %s\nINPUT:\n%s\nsets:\n%s", peerChain, chainErr, chain, input, sets)
}
