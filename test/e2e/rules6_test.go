package e2e

import (
	"fmt"
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

// TestNFTablesWithIPv6IsRefused: the nftables mode is IPv4 only, so
// EnableNFTables with EnableIPv6 ends the start with an error naming both
// (and the IPv6 network) instead of leaving IPv6 without rules.
func TestNFTablesWithIPv6IsRefused(t *testing.T) {
	cfg := strings.Replace(rules6Config, `"EnableIPv6"`, `"EnableNFTables":true,"EnableIPv6"`, 1)
	l := labtest.NewLab(t, lab.Options{Nodes: 1, CNIPlugin: overlaydBin}, cfg)
	ctx := labtest.Context(t, 30*time.Second)
	n := l.Nodes[0]
	a, err := l.StartAgent(ctx, n, lab.OverlaydArgs(overlaydBin, l, n))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("overlayd still runs with EnableNFTables and EnableIPv6:\n%s", a.LogTail(20))
	}
	for _, want := range []string{"EnableNFTables with EnableIPv6", rules6Network} {
		if err := labtest.LogContains(a, want); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIPv6TurnedOffRemovesIP6Tables: a node that served IPv6 (its subnet
// file has FLANNEL_IPV6_*) restarted with an IPv4-only config removes
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
	checkIP6TablesAsFlanneld(t, n)
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
