package nft

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

// What each mode installs (with --vxlan-peer-filter and the default
// --tx-checksum-offload=auto): iptables chains and the ipset, or nftables
// tables.
var (
	iptablesNames = []string{"FLANNEL-POSTRTG", "FLANNEL-FWD", "OVERLAYD-VXLAN", "OVERLAYD-NOTRACK"}
	nftTables     = []string{"flannel-ipv4", "overlayd-ipv4"}
)

// TestModeSwitchBothWays: one node restarted iptables → nftables →
// iptables → nftables, each time with the other mode's rules present.
// After every start exactly one mode's rules are there, once: each chain,
// jump and table once, the ipset only in iptables mode, and flanneld's
// empty flannel-ipv6 table gone in iptables mode.
func TestModeSwitchBothWays(t *testing.T) {
	l := newLab(t, 1, 0, iptablesConfig)
	n := l.Nodes[0]
	flags := []string{"--vxlan-peer-filter", "--iptables-resync=1"}
	// What flanneld leaves in nftables mode next to ours: an empty ip6 table.
	netnsutil.MustExec(t, n.NS, "nft", "add", "table", "ip6", "flannel-ipv6")
	for i, nft := range []bool{false, true, false, true} {
		config := iptablesConfig
		if nft {
			config = nftConfig
		}
		writeConfig(t, l, config)
		startOverlayd(t, l, n, nil, flags...)
		labtest.WaitUp(t, l, n, upTimeout)
		labtest.WaitFor(t, repairTimeout, fmt.Sprintf("step %d (nftables=%t): one mode's rules only", i, nft), func() (bool, string) {
			return onlyMode(t, n, nft)
		})
		if err := l.Agent(n).Stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
}

// onlyMode reports whether n has exactly one copy of the nftables mode's
// tables (nft) or of the iptables mode's chains, jumps and set, and
// nothing of the other.
func onlyMode(t *testing.T, n *lab.Node, nft bool) (bool, string) {
	save := iptablesSave(t, n)
	tables := nftIn(t, n, "list", "tables")
	sets, _ := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, "ipset", "list", "-n")
	state := fmt.Sprintf("iptables-save:\n%s\nnft list tables:\n%s\nipset list -n:\n%s", save, tables, sets)
	for _, c := range iptablesNames {
		// ":CHAIN" declares it, "-j CHAIN" is the jump.
		want := 1
		if nft {
			want = 0
		}
		if strings.Count(save, ":"+c+" ") != want || strings.Count(save, "-j "+c+"\n") != want {
			return false, state
		}
	}
	for _, tb := range append(nftTables, "flannel-ipv6") {
		want := 0
		if nft && tb != "flannel-ipv6" {
			want = 1
		}
		if strings.Count(tables, " "+tb+"\n") != want {
			return false, state
		}
	}
	return strings.Contains(sets, "overlayd-vxlan-peers") == !nft, state
}

// TestNoIPTablesClearError: without EnableNFTables and with no iptables in
// PATH, overlayd stops at start with an error naming the binary and
// suggesting EnableNFTables; with EnableNFTables the same node starts.
func TestNoIPTablesClearError(t *testing.T) {
	l := newLab(t, 1, 0, iptablesConfig)
	n := l.Nodes[0]
	env := []string{noIPTablesPath(t)}
	a := startOverlayd(t, l, n, env)
	labtest.WaitExit(t, a, upTimeout, "overlayd without iptables")
	if err := labtest.LogContains(a, "iptables binary is not in PATH", "EnableNFTables"); err != nil {
		t.Errorf("%v\n%s", err, a.LogTail(20))
	}
	// It stopped before touching the node: no device (made before the
	// lease is taken).
	if out, err := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, "ip", "link", "show", "flannel.1"); err == nil {
		t.Errorf("the failed start created the VXLAN device:\n%s", out)
	}
	writeConfig(t, l, nftConfig)
	startOverlayd(t, l, n, env)
	labtest.WaitUp(t, l, n, upTimeout)
}
