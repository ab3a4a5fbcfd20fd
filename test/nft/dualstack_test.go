package nft

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

const nftDualStackConfig = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableNFTables":true,"EnableIPv6":true,"IPv6Network":"2001:db8:1000::/48","Backend":{"Type":"vxlan"}}`

// TestNFTablesDualStack: two overlayd nodes with EnableNFTables and
// EnableIPv6, no iptables, ip6tables or nft binary in their PATH, on an
// underlay with both families. Every pod reaches every other on both
// families; the IPv6 rules are in table ip6 flannel-ipv6, the IPv6 peer
// set in ip6 overlayd-ipv6 holds the peer's IPv6 address and drops a
// stranger's VXLAN over IPv6, ip6tables stays empty. Then a real flanneld v0.28.10 takes node1 over with the same
// config: its flannel-ipv6 table is overlayd's (normalised for the node's
// IPv6 subnet), traffic flows on both families, and overlayd takes the
// node back to the same table.
func TestNFTablesDualStack(t *testing.T) {
	flanneld := lab.FlanneldBinaryT(t)
	l := labtest.NewLab(t, lab.Options{Nodes: 2, PodsPerNode: 1, CNIPlugin: overlaydBin, Underlay6: true}, nftDualStackConfig)
	env := []string{noIPTablesPath(t)}
	flags := []string{"--vxlan-peer-filter", "--iptables-resync=1"}
	ctx := labtest.Context(t, 120*time.Second)
	for _, n := range l.Nodes {
		startOverlayd(t, l, n, env, flags...)
		labtest.WaitUp(t, l, n, upTimeout)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	pingBoth(t, ctx, l)
	n0, n1 := l.Nodes[0], l.Nodes[1]
	labtest.WaitFor(t, repairTimeout, "node0's IPv6 peer set holds node1", func() (bool, string) {
		set := nftIn(t, n0, "list", "set", "ip6", "overlayd-ipv6", "vxlan-peers")
		return strings.Contains(set, n1.UnderlayIP6.String()), set
	})
	// A stranger's VXLAN over IPv6 is dropped by the set; with the
	// stranger added to it, the same frame gets through (control).
	attacker := labtest.AddAttacker6(t, l)
	labtest.Eventually(t, 10*time.Second, "the attacker on the IPv6 underlay", func() error {
		return lab.PingFrom(ctx, attacker, n0.UnderlayIP6)
	})
	frame := labtest.CraftedVXLAN6(t, ctx, l, n0, n1)
	checkStrangerDropped(t, n0, "ip6", "overlayd-ipv6", labtest.AttackerIP6.Addr(), func() bool {
		return labtest.InjectAndWatch6(t, attacker, n0, n0.Pods[0], frame)
	})
	for _, n := range l.Nodes {
		if save := netnsutil.MustExec(t, n.NS, "ip6tables-save"); strings.Contains(save, "FLANNEL") || strings.Contains(save, "OVERLAYD") {
			t.Errorf("%s has ip6tables rules in nftables mode:\n%s", n.Name, save)
		}
	}
	ours, _ := flannelTable(t, n0, true)
	if !strings.Contains(ours, "<SUBNET>") || !strings.Contains(ours, "masquerade") {
		t.Fatalf("node0's ip6 flannel-ipv6 lacks the masquerade rules of its IPv6 subnet %s:\n%s", n0.Subnet.Lease6(), ours)
	}
	swapFlanneldAndBack(t, l, flanneld, n1, n0.Name, true, ours, env, flags, func() { pingBoth(t, ctx, l) })
	pingBoth(t, ctx, l)
}

// pingBoth: every pod reaches every other pod over IPv4 and over IPv6.
func pingBoth(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	for _, ipv6 := range []bool{false, true} {
		if m, err := l.PingAllFamilyRetry(ctx, ipv6, 20, 250*time.Millisecond); err != nil {
			t.Fatalf("ping all (ipv6 %t):\n%s", ipv6, m)
		}
	}
}
