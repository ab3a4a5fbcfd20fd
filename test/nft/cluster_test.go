package nft

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestNFTablesCluster: three overlayd nodes with EnableNFTables and no
// iptables or nft binary in their PATH. Every pod reaches every other,
// pod-to-pod keeps its source, pod-to-outside is masqueraded to the node's
// address, the iptables tables stay empty, and a stranger's crafted VXLAN
// is dropped by the peer set. Then drift repair, and a real flanneld v0.28
// taking node2 over and handing it back: its flannel-ipv4 table is the
// same as overlayd's (normalised), with no leftovers either way.
func TestNFTablesCluster(t *testing.T) {
	flanneld := lab.FlanneldBinaryT(t)
	l := newLab(t, 3, 1, nftConfig)
	env := []string{noIPTablesPath(t)}
	flags := []string{"--vxlan-peer-filter", "--iptables-resync=1"}
	for _, n := range l.Nodes {
		startOverlayd(t, l, n, env, flags...)
	}
	ctx := labtest.Context(t, 80*time.Second)
	for _, n := range l.Nodes {
		labtest.WaitUp(t, l, n, upTimeout)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	pingAll(t, l)
	n0, n1, n2 := l.Nodes[0], l.Nodes[1], l.Nodes[2]

	t.Run("pod to pod keeps its source", func(t *testing.T) {
		from, to := n0.Pods[0], n1.Pods[0]
		if got := labtest.UDPSourceSeen(t, from.NS, to.NS, to.IP); got != from.IP {
			t.Errorf("pod %s -> pod %s arrived from %s, want %s", from, to, got, from.IP)
		}
	})
	t.Run("pod to outside is masqueraded", func(t *testing.T) {
		internet, err := l.AddHost()
		if err != nil {
			t.Fatal(err)
		}
		if got := labtest.UDPSourceSeen(t, n0.Pods[0].NS, internet.NS, internet.IP); got != n0.UnderlayIP {
			t.Errorf("pod %s -> outside %s arrived from %s, want the node's address %s", n0.Pods[0], internet.IP, got, n0.UnderlayIP)
		}
	})
	t.Run("no iptables rules", func(t *testing.T) {
		for _, n := range l.Nodes {
			if save := iptablesSave(t, n); strings.Contains(save, "FLANNEL") || strings.Contains(save, "OVERLAYD") {
				t.Errorf("%s has iptables rules in nftables mode:\n%s", n.Name, save)
			}
		}
	})
	t.Run("peer filter drops a stranger", func(t *testing.T) {
		labtest.WaitFor(t, repairTimeout, "node0's peer set holds node1 and node2", func() (bool, string) {
			set := nftIn(t, n0, "list", "set", "ip", "overlayd-ipv4", "vxlan-peers")
			return strings.Contains(set, n1.UnderlayIP.String()) && strings.Contains(set, n2.UnderlayIP.String()), set
		})
		attacker := labtest.AddAttacker(t, l)
		for try := 0; try < 3; try++ {
			if err := lab.PingFrom(ctx, attacker, n0.UnderlayIP); err == nil {
				break
			}
		}
		frame := labtest.CraftedVXLAN(t, ctx, l, n0, n1)
		inject := func() bool { return labtest.InjectAndWatch(t, attacker, n0, n0.Pods[0], frame) }
		checkStrangerDropped(t, n0, "ip", "overlayd-ipv4", labtest.AttackerIP.Addr(), inject)
		if inject() {
			t.Errorf("pod %s received the stranger's frame after the resync", n0.Pods[0])
		}
		pingAll(t, l)
	})
	t.Run("drift is repaired", func(t *testing.T) { testDrift(t, l, n1) })
	t.Run("flanneld takes over and hands back", func(t *testing.T) { testFlanneldSwap(t, l, flanneld, n0, n2, env, flags) })
}

// testDrift damages n's tables behind overlayd's back, one way after the
// other, and waits for the exact ruleset to come back each time.
func testDrift(t *testing.T, l *lab.Lab, n *lab.Node) {
	want := nftIn(t, n, "list", "ruleset")
	handle := regexp.MustCompile(`ip daddr != 224\.0\.0\.0/4 masquerade fully-random # handle (\d+)`)
	for _, damage := range []struct {
		name string
		args func() []string
	}{
		{"masquerade rule deleted", func() []string {
			m := handle.FindStringSubmatch(nftIn(t, n, "-a", "list", "chain", "ip", "flannel-ipv4", "postrtg"))
			if m == nil {
				t.Fatalf("no masquerade rule to delete")
			}
			return []string{"delete", "rule", "ip", "flannel-ipv4", "postrtg", "handle", m[1]}
		}},
		{"forward chain deleted", func() []string { return []string{"delete", "chain", "ip", "flannel-ipv4", "forward"} }},
		{"forward policy set to drop", func() []string {
			return []string{"add", "chain", "ip", "flannel-ipv4", "forward", "{ type filter hook forward priority filter; policy drop; }"}
		}},
		{"foreign rule added", func() []string { return []string{"insert", "rule", "ip", "flannel-ipv4", "postrtg", "accept"} }},
		{"peer set flushed", func() []string { return []string{"flush", "set", "ip", "overlayd-ipv4", "vxlan-peers"} }},
		{"peer filter chain deleted", func() []string { return []string{"delete", "chain", "ip", "overlayd-ipv4", "vxlan-peer-filter"} }},
		{"table deleted", func() []string { return []string{"delete", "table", "ip", "flannel-ipv4"} }},
	} {
		nftIn(t, n, damage.args()...)
		if got := nftIn(t, n, "list", "ruleset"); sameRuleset(got, want) {
			t.Fatalf("%s: the damage did not change the ruleset", damage.name)
		}
		labtest.WaitFor(t, repairTimeout, "the ruleset repaired after: "+damage.name, func() (bool, string) {
			got := nftIn(t, n, "list", "ruleset")
			return sameRuleset(got, want), fmt.Sprintf("got:\n%s\nwant:\n%s", got, want)
		})
	}
	doc := labtest.MustStatus(t, n)
	if doc.IPTables == nil || doc.IPTables.Repairs == 0 || !doc.IPTables.InPlace {
		t.Errorf("/status after repairs: %+v, want in place with repairs counted", doc.IPTables)
	}
	for _, series := range []string{
		`overlayd_iptables_repairs_total{chain="forward",table="flannel-ipv4"}`,
		`overlayd_iptables_repairs_total{chain="postrtg",table="flannel-ipv4"}`,
		`overlayd_vxlan_peer_filter_repairs_total`,
	} {
		if v := labtest.Metric(t, n, series); v < 1 {
			t.Errorf("%s = %v after the repairs, want at least 1", series, v)
		}
	}
	pingAll(t, l)
}

// testFlanneldSwap stops overlayd on n, runs the real flanneld there with
// the same EnableNFTables config, compares its flannel-ipv4 table with
// ref's (an overlayd node), then gives n back to overlayd.
func testFlanneldSwap(t *testing.T, l *lab.Lab, flanneld string, ref, n *lab.Node, env, flags []string) {
	ours, _ := flannelTable(t, ref, false)
	swapFlanneldAndBack(t, l, flanneld, n, ref.Name, false, ours, env, flags, func() { pingAll(t, l) })
	if got := nftIn(t, n, "list", "tables"); strings.Count(got, "flannel-ipv4") != 1 {
		t.Errorf("tables on %s after the swap back:\n%s", n.Name, got)
	}
	pingAll(t, l)
}

// flannelTable reads flanneld's masquerade table of one family on n,
// flannel-ipv4 in ip or (ipv6) flannel-ipv6 in ip6: as normalise gives it
// with n's subnet of that family taken out, and raw.
func flannelTable(t *testing.T, n *lab.Node, ipv6 bool) (norm, raw string) {
	if ipv6 {
		raw = nftTable(t, n, "ip6", "flannel-ipv6")
		return normalise(raw, n.Subnet.Lease6().String()), raw
	}
	raw = nftTable(t, n, "ip", "flannel-ipv4")
	return normalise(raw, n.Subnet.Lease().String()), raw
}

// swapFlanneldAndBack stops overlayd on n and runs the real flanneld
// there, waits until flanneld's flannelTable of the family (ipv6) reads as
// ours (overlayd's, from the node named ref), pings with ping, then starts
// overlayd (env, flags) on n again and waits until the table is overlayd's
// again, with no rule of flanneld's left.
func swapFlanneldAndBack(t *testing.T, l *lab.Lab, flanneld string, n *lab.Node, ref string, ipv6 bool, ours string, env, flags []string, ping func()) {
	t.Helper()
	if err := l.Agent(n).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartFlanneld(context.Background(), n, flanneld, "--iptables-resync=1"); err != nil {
		t.Fatal(err)
	}
	labtest.WaitUp(t, l, n, upTimeout)
	name := map[bool]string{false: "flannel-ipv4", true: "flannel-ipv6"}[ipv6]
	var theirs string
	// flanneld matches the mark's exact value, overlayd its bit: that tells
	// whose rules are in place.
	labtest.WaitFor(t, repairTimeout, "flanneld's "+name+" table like overlayd's", func() (bool, string) {
		var raw string
		theirs, raw = flannelTable(t, n, ipv6)
		return strings.Contains(raw, flanneldMark) && theirs == ours, fmt.Sprintf("flanneld (%s):\n%s\noverlayd (%s):\n%s", n.Name, raw, ref, ours)
	})
	t.Logf("flanneld's and overlayd's %s, normalised:\n%s", name, theirs)
	ping()
	if err := l.Agent(n).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	startOverlayd(t, l, n, env, flags...)
	labtest.WaitUp(t, l, n, upTimeout)
	labtest.WaitFor(t, repairTimeout, "overlayd's "+name+" back on "+n.Name, func() (bool, string) {
		norm, raw := flannelTable(t, n, ipv6)
		return norm == ours && !strings.Contains(raw, flanneldMark), raw
	})
}

const flanneldMark = "meta mark 0x00004000 return"

// checkStrangerDropped: the stranger's frame (inject sends it and reports
// whether the pod saw it) is dropped by node's peer set in nftables table
// family/table; with the stranger added to the set the same frame gets
// through (so the set is what dropped it, and the frame is right), until
// the resync takes the stranger out again.
func checkStrangerDropped(t *testing.T, node *lab.Node, family, table string, stranger netip.Addr, inject func() bool) {
	t.Helper()
	if inject() {
		t.Errorf("pod %s received the stranger's %s VXLAN frame despite the filter", node.Pods[0], family)
	}
	add := []string{"add", "element", family, table, "vxlan-peers", "{ " + stranger.String() + " }"}
	seen := false
	for try := 0; try < 3 && !seen; try++ {
		nftIn(t, node, add...)
		seen = inject()
	}
	if !seen {
		t.Errorf("with the stranger in the %s peer set its frame did not reach pod %s either: the test's frame is wrong", family, node.Pods[0])
	}
	labtest.WaitFor(t, repairTimeout, "the stranger taken out of the "+family+" peer set", func() (bool, string) {
		set := nftIn(t, node, "list", "set", family, table, "vxlan-peers")
		return !strings.Contains(set, stranger.String()), set
	})
}
