package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// TestMixedDualStackWithRunningFlanneld: a real flanneld v0.28.10 node
// and two overlayd nodes in one dual-stack network, on an underlay with
// both families. Every pod reaches every other pod over IPv4 and over
// IPv6; pod-to-pod traffic between the flanneld node and an overlayd node
// keeps the source pod's address both ways on both families; every
// node's ip6tables rules are flanneld's for its own IPv6 subnet, and the
// overlayd nodes' IPv6 peer filter admits the flanneld node. Then
// overlayd takes the flanneld node over in place: it finds both
// families' chains in place (no repair, no duplicate) and the pods still
// reach each other on both families.
func TestMixedDualStackWithRunningFlanneld(t *testing.T) {
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	l := lab.NewT(t, lab.Options{Nodes: 3, PodsPerNode: 1, CNIPlugin: overlaydBin, Underlay6: true})
	c := &mixedCluster{cluster: &cluster{Lab: l, t: t, store: v3Store{l}, extra: []string{"--vxlan-peer-filter"}}, flanneld: bin}
	ctx := labtest.Context(t, 120*time.Second)
	if err := l.WriteConfig(ctx, rules6Config); err != nil {
		t.Fatal(err)
	}
	kinds := []agentKind{kindFlanneld, kindOverlayd, kindOverlayd}
	for i, n := range l.Nodes {
		c.startKind(n, kinds[i])
		c.waitUp(n)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	for _, ipv6 := range []bool{false, true} {
		if m, err := l.PingAllFamilyRetry(ctx, ipv6, 20, 250*time.Millisecond); err != nil {
			t.Fatalf("ping all (ipv6 %t):\n%s", ipv6, m)
		}
	}
	flan, over := l.Nodes[0].Pods[0], l.Nodes[1].Pods[0]
	for _, ipv6 := range []bool{false, true} {
		for _, pair := range [][2]*lab.Pod{{flan, over}, {over, flan}} {
			from, to := pair[0], pair[1]
			got, err := lab.SeenSource(ctx, from.NS, to.NS, to.Addr(ipv6))
			if err != nil {
				t.Fatal(err)
			}
			if got != from.Addr(ipv6) {
				t.Errorf("pod %s -> pod %s (ipv6 %t) arrived from %s, want the pod's own address %s (no SNAT inside the pod network)", from, to, ipv6, got, from.Addr(ipv6))
			}
		}
	}
	for i, n := range l.Nodes {
		checkIP6TablesAsFlanneld(t, n, rules6Network)
		if kinds[i] == kindOverlayd {
			checkIP6TablesResynced(t, n)
			set := netnsutil.MustExec(t, n.NS, "ipset", "list", "overlayd-vxlan-peers6")
			if want := l.Nodes[0].UnderlayIP6.String(); !containsLine(set, want) {
				t.Errorf("%s: the IPv6 peer set lacks the flanneld node's %s:\n%s", n.Name, want, set)
			}
		}
	}

	// flanneld -> overlayd on node0, in place.
	node0 := l.Nodes[0]
	if err := l.Agent(node0).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.start(node0)
	c.waitUp(node0)
	checkIP6TablesResynced(t, node0)
	labtest.Eventually(t, 15*time.Second, "both families in sync on "+node0.Name, func() error {
		for _, fam := range []string{"ipv4", "ipv6"} {
			v, err := labtest.MetricValue(labtest.Context(t, 5*time.Second), node0, `overlayd_sync_in_sync{family="`+fam+`"}`)
			if err == nil && v != 1 {
				err = fmt.Errorf("%s not in sync", fam)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if w := metricSum(t, l.Nodes[1], "overlayd_sync_writes_total"); w == 0 {
		t.Fatalf("%s shows no kernel writes at all: the write count cannot be read", l.Nodes[1].Name)
	}
	if w := metricSum(t, node0, "overlayd_sync_writes_total"); w != 0 {
		t.Errorf("overlayd made %v kernel writes over flanneld's entries (both families), want 0", w)
	}
	if r := metricSum(t, node0, "overlayd_iptables_repairs_total"); r != 0 {
		t.Errorf("overlayd repaired flanneld's iptables or ip6tables chains %v times, want 0", r)
	}
	checkIP6TablesAsFlanneld(t, node0, rules6Network)
	for _, ipv6 := range []bool{false, true} {
		if m, err := l.PingAllFamilyRetry(ctx, ipv6, 20, 250*time.Millisecond); err != nil {
			t.Fatalf("ping all after the takeover (ipv6 %t):\n%s", ipv6, m)
		}
	}
}

// checkIP6TablesResynced waits until overlayd on n has checked its
// ip6tables rules at least once.
func checkIP6TablesResynced(t *testing.T, n *lab.Node) {
	t.Helper()
	labtest.Eventually(t, 15*time.Second, "ip6tables checked on "+n.Name, func() error {
		v, err := labtest.MetricValue(labtest.Context(t, 5*time.Second), n, `overlayd_iptables_resyncs_total{family="ipv6"}`)
		if err == nil && v < 1 {
			err = fmt.Errorf("no check yet")
		}
		return err
	})
}

// checkIP6TablesAsFlanneld compares n's ip6tables with what flanneld
// v0.28.10 leaves for IPv6 network network and the node's IPv6 subnet
// (from its subnet file).
func checkIP6TablesAsFlanneld(t *testing.T, n *lab.Node, network string) {
	t.Helper()
	env, err := subnet.ReadSubnetFile(n.SubnetFile)
	if err != nil {
		t.Fatal(err)
	}
	if env.IPv6Network.String() != network || !env.IPv6Subnet.IsValid() {
		t.Fatalf("%s: subnet file has IPv6 network %s subnet %s", n.Name, env.IPv6Network, env.IPv6Subnet)
	}
	own := env.IPv6Subnet.Masked().String()
	if got, want := netnsutil.MustExec(t, n.NS, "ip6tables", "-t", "nat", "-S"), labtest.FlanneldNAT6(network, own); got != want {
		t.Errorf("%s: ip6tables -t nat -S\n got:\n%s\nwant:\n%s", n.Name, got, want)
	}
	// The filter table also holds the peer filter on overlayd nodes:
	// compare the forward rules only.
	want := linesWith(labtest.FlanneldFilter6(network), "FLANNEL-FWD")
	if got := linesWith(netnsutil.MustExec(t, n.NS, "ip6tables", "-S"), "FLANNEL-FWD"); !slices.Equal(got, want) {
		t.Errorf("%s: ip6tables -S forward rules\n got: %q\nwant: %q", n.Name, got, want)
	}
}

// linesWith returns the lines of text that contain s.
func linesWith(text, s string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
