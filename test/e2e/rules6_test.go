package e2e

import (
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

// rules6Config is a dual-stack network config: flannel's IPv4 network
// and an IPv6 network of /64 node subnets.
const (
	rules6Network = "2001:db8:1000::/48"
	rules6Config  = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"` + rules6Network + `","Backend":{"Type":"vxlan"}}`
)

// TestIPv6TurnedOffRemovesIP6Tables: ip6tables drift on a dual-stack
// node is repaired by the resync and counted under family="ipv6"; the
// node, which served IPv6 (its subnet file has FLANNEL_IPV6_*),
// restarted with an IPv4-only config removes
// what it left in ip6tables: the masquerade and forward chains, their
// jumps, the IPv6 peer filter and its set; the IPv4 rules stay.
func TestIPv6TurnedOffRemovesIP6Tables(t *testing.T) {
	netnsutil.RequireRoot(t)
	l := lab.NewT(t, lab.Options{Nodes: 1, CNIPlugin: overlaydBin, Underlay6: true})
	c := &cluster{Lab: l, t: t, store: v3Store{l}, extra: []string{"--vxlan-peer-filter"}}
	ctx := labtest.Context(t, 60*time.Second)
	if err := l.WriteConfig(ctx, rules6Config); err != nil {
		t.Fatal(err)
	}
	n := l.Nodes[0]
	a := c.start(n)
	c.waitUp(n)
	checkIP6TablesAsFlanneld(t, n, rules6Network)
	// Drift: the jump to FLANNEL-POSTRTG and a FLANNEL-FWD rule go; the
	// next resync puts them back and counts the repairs as IPv6's.
	netnsutil.MustExec(t, n.NS, "ip6tables", "-t", "nat", "-D", "POSTROUTING", "-m", "comment", "--comment", "flanneld masq", "-j", "FLANNEL-POSTRTG")
	netnsutil.MustExec(t, n.NS, "ip6tables", "-D", "FLANNEL-FWD", "1")
	labtest.Eventually(t, 20*time.Second, "ip6tables drift repaired", func() error {
		v, err := labtest.MetricValue(ctx, n, `overlayd_iptables_repairs_total{chain="POSTROUTING",family="ipv6",table="nat"}`)
		if err == nil && v < 2 { // the first check at start wrote the jump: 1
			err = fmt.Errorf("no repair yet (%v)", v)
		}
		return err
	})
	labtest.Eventually(t, 20*time.Second, "FLANNEL-FWD repaired", func() error {
		v, err := labtest.MetricValue(ctx, n, `overlayd_iptables_repairs_total{chain="FLANNEL-FWD",family="ipv6",table="filter"}`)
		if err == nil && v < 2 { // the first check at start made the chain: 1
			err = fmt.Errorf("no repair yet (%v)", v)
		}
		return err
	})
	checkIP6TablesAsFlanneld(t, n, rules6Network)
	if err := a.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteConfig(ctx, testConfig); err != nil {
		t.Fatal(err)
	}
	c.start(n)
	labtest.Eventually(t, 30*time.Second, "ip6tables emptied", func() error {
		for _, table := range []string{"nat", "filter"} {
			out, err := netnsutil.Exec(ctx, n.NS, "ip6tables", "-t", table, "-S")
			if err != nil {
				return err
			}
			if strings.Contains(out, "-N ") || strings.Contains(out, "-A ") {
				return fmt.Errorf("ip6tables -t %s -S still has rules:\n%s", table, out)
			}
		}
		return nil
	})
	c.waitUp(n)
	if sets := netnsutil.MustExec(t, n.NS, "ipset", "list", "-n"); strings.Contains(sets, "overlayd-vxlan-peers6") {
		t.Errorf("the IPv6 peer set is still there: %q", sets)
	}
	if got := netnsutil.MustExec(t, n.NS, "iptables", "-t", "nat", "-S"); !strings.Contains(got, "-N FLANNEL-POSTRTG") {
		t.Errorf("the IPv4 rules are gone:\n%s", got)
	}
}

// TestIPv6PeerFilterDropsStrangers: with --vxlan-peer-filter, a VXLAN
// packet over IPv6 from an underlay address that is no peer's (a forged
// frame that would reach a pod) is dropped by OVERLAYD-VXLAN in
// ip6tables, while the peers' IPv6 traffic flows; without the flag the
// same frame reaches the pod (so the drop is the filter's doing).
func TestIPv6PeerFilterDropsStrangers(t *testing.T) {
	netnsutil.RequireRoot(t)
	l := lab.NewT(t, lab.Options{Nodes: 2, PodsPerNode: 1, CNIPlugin: overlaydBin, Underlay6: true})
	c := &cluster{Lab: l, t: t, store: v3Store{l}, extra: []string{"--vxlan-peer-filter"}}
	ctx := labtest.Context(t, 90*time.Second)
	if err := l.WriteConfig(ctx, rules6Config); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		c.start(n)
		c.waitUp(n)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	n0, n1 := l.Nodes[0], l.Nodes[1]
	labtest.Eventually(t, 20*time.Second, "node1 in node0's IPv6 peer set", func() error {
		set, err := netnsutil.Exec(ctx, n0.NS, "ipset", "list", "overlayd-vxlan-peers6")
		if err == nil && !containsLine(set, n1.UnderlayIP6.String()) {
			err = fmt.Errorf("not yet:\n%s", set)
		}
		return err
	})
	attacker := labtest.AddAttacker6(t, l)
	labtest.Eventually(t, 10*time.Second, "the attacker on the IPv6 underlay", func() error {
		return lab.PingFrom(ctx, attacker, n0.UnderlayIP6)
	})
	frame := labtest.CraftedVXLAN6(t, ctx, l, n0, n1)
	target := n0.Pods[0]
	before := drop6Count(t, n0)
	if labtest.InjectAndWatch6(t, attacker, n0, target, frame) {
		t.Fatalf("pod %s received the frame injected over IPv6 despite the filter", target)
	}
	if got := drop6Count(t, n0); got < before+labtest.InjectCount {
		t.Errorf("ip6tables OVERLAYD-VXLAN DROP counter went from %d to %d, want +%d", before, got, labtest.InjectCount)
	}
	if m, err := l.PingAllFamilyRetry(ctx, true, 20, 250*time.Millisecond); err != nil {
		t.Fatalf("IPv6 ping all with the filter on:\n%s", m)
	}

	if err := l.Agent(n0).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	labtest.StartAgent(t, l, n0, lab.OverlaydArgs(overlaydBin, l, n0))
	c.waitUp(n0)
	labtest.Eventually(t, 20*time.Second, "the IPv6 peer filter removed", func() error {
		out, err := netnsutil.Exec(ctx, n0.NS, "ip6tables", "-S")
		if err == nil && strings.Contains(out, "OVERLAYD-VXLAN") {
			err = fmt.Errorf("still there:\n%s", out)
		}
		return err
	})
	if !labtest.InjectAndWatch6(t, attacker, n0, target, frame) {
		t.Fatalf("without the filter the injected frame did not reach pod %s: the frame is not a valid test", target)
	}
}

// drop6Count is the packet counter of the first DROP rule of
// OVERLAYD-VXLAN in n's ip6tables (the VXLAN port's).
func drop6Count(t *testing.T, n *lab.Node) int {
	t.Helper()
	out := netnsutil.MustExec(t, n.NS, "ip6tables", "-w", "5", "-L", "OVERLAYD-VXLAN", "-n", "-v", "-x")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" {
			count, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("DROP rule counter %q: %v", f[0], err)
			}
			return count
		}
	}
	t.Fatalf("OVERLAYD-VXLAN on %s has no DROP rule:\n%s", n.Name, out)
	return 0
}
