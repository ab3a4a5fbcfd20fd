package nft

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// overlaydBin is built once in TestMain (only as root).
var overlaydBin string

func TestMain(m *testing.M) {
	os.Exit(lab.RunWithOverlayd(m, &overlaydBin))
}

const (
	nftConfig      = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableNFTables":true,"Backend":{"Type":"vxlan"}}`
	iptablesConfig = `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`
	upTimeout      = 30 * time.Second
	repairTimeout  = 10 * time.Second
)

// noIPTablesPath is a PATH with neither iptables nor nft in it: the
// nftables mode needs no binary.
func noIPTablesPath(t *testing.T) string { return "PATH=" + t.TempDir() }

// startOverlayd runs overlayd on n with extra flags; env entries
// ("PATH=...") go before it through env(1).
func startOverlayd(t *testing.T, l *lab.Lab, n *lab.Node, env []string, extra ...string) *lab.Agent {
	t.Helper()
	argv := lab.OverlaydArgs(overlaydBin, l, n, extra...)
	if len(env) > 0 {
		argv = append(append([]string{"/usr/bin/env"}, env...), argv...)
	}
	return labtest.StartAgent(t, l, n, argv)
}

func newLab(t *testing.T, nodes, pods int, config string) *lab.Lab {
	t.Helper()
	return labtest.NewLab(t, lab.Options{Nodes: nodes, PodsPerNode: pods, CNIPlugin: overlaydBin}, config)
}

func writeConfig(t *testing.T, l *lab.Lab, config string) {
	t.Helper()
	if err := l.WriteConfig(labtest.Context(t, 10*time.Second), config); err != nil {
		t.Fatal(err)
	}
}

func pingAll(t *testing.T, l *lab.Lab) {
	t.Helper()
	labtest.PingAll(t, l, "ping all", 30*time.Second, 20, 250*time.Millisecond)
}

// nftIn runs nft in n's namespace (the test's own binary, not overlayd's).
func nftIn(t *testing.T, n *lab.Node, args ...string) string {
	t.Helper()
	return netnsutil.MustExec(t, n.NS, append([]string{"nft"}, args...)...)
}

// nftTable is `nft list table ip <name>`, or "" when there is none.
func nftTable(t *testing.T, n *lab.Node, family, name string) string {
	t.Helper()
	out, err := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, "nft", "list", "table", family, name)
	if err != nil {
		return ""
	}
	return out
}

var (
	commentLine = regexp.MustCompile(`(?m)^\s*comment ".*"\n`)
	// kube-proxy's mark: flanneld matches the exact value, overlayd the bit
	// (docs/compatibility.md, "nftables mode").
	markMatch = regexp.MustCompile(`meta mark (& 0x00004000 == )?0x00004000`)
)

// normalise makes two nodes' flannel-ipv4 tables comparable: the node's
// own subnet becomes <SUBNET>, comments (flanneld's table and chain
// comments, which the netlink library cannot write) and the mark's form go.
func normalise(table, ownSubnet string) string {
	s := commentLine.ReplaceAllString(table, "")
	s = markMatch.ReplaceAllString(s, "meta mark <KUBE-MARK>")
	s = strings.ReplaceAll(s, ownSubnet, "<SUBNET>")
	return s
}

// iptablesSave is iptables-save of n (what the iptables mode leaves).
func iptablesSave(t *testing.T, n *lab.Node) string {
	t.Helper()
	return netnsutil.MustExec(t, n.NS, "iptables-save")
}

// sameRuleset compares two `nft list ruleset` outputs as sets of tables,
// each a set of chains and sets: the order nft lists them in is the order
// they were created in, which a repair (or the peer filter installed
// before the device) changes without changing the ruleset.
func sameRuleset(a, b string) bool { return normalizeRuleset(a) == normalizeRuleset(b) }

func normalizeRuleset(s string) string {
	var tables []string
	var blocks []string
	var head, cur []string
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "table "):
			head = []string{line}
		case line == "}":
			slices.Sort(blocks)
			tables = append(tables, strings.Join(append(head, blocks...), "\n"))
			blocks = nil
		case strings.HasPrefix(line, "\t}"):
			cur = append(cur, line)
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		case strings.TrimSpace(line) == "":
		default:
			cur = append(cur, line)
		}
	}
	slices.Sort(tables)
	return strings.Join(tables, "\n")
}
