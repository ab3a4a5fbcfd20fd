package iptables

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// newRunnerInNetns returns go-iptables working inside namespace ns.
// go-iptables execs the iptables binary, which acts on the namespace of the
// process, so it is pointed at a wrapper script that enters ns first.
func newRunnerInNetns(t *testing.T, ns string, proto goipt.Protocol) *countingRunner {
	t.Helper()
	bin := "iptables"
	if proto == goipt.ProtocolIPv6 {
		bin = "ip6tables"
	}
	path := filepath.Join(t.TempDir(), bin)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, bin)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Path(path), goipt.Timeout(30))
	if err != nil {
		t.Fatalf("go-iptables in netns %s: %v", ns, err)
	}
	return &countingRunner{Runner: ipt}
}

func ipsetInNetns(ns string) *ExecIPSet {
	return &ExecIPSet{Command: []string{"ip", "netns", "exec", ns, "ipset"}}
}

// countingRunner counts the writes made through a real Runner.
type countingRunner struct {
	Runner
	writes int
}

func (c *countingRunner) count(err error) error {
	if err == nil {
		c.writes++
	}
	return err
}

func (c *countingRunner) NewChain(table, chain string) error {
	return c.count(c.Runner.NewChain(table, chain))
}
func (c *countingRunner) ClearChain(table, chain string) error {
	return c.count(c.Runner.ClearChain(table, chain))
}
func (c *countingRunner) DeleteChain(table, chain string) error {
	return c.count(c.Runner.DeleteChain(table, chain))
}
func (c *countingRunner) Append(table, chain string, spec ...string) error {
	return c.count(c.Runner.Append(table, chain, spec...))
}
func (c *countingRunner) Insert(table, chain string, pos int, spec ...string) error {
	return c.count(c.Runner.Insert(table, chain, pos, spec...))
}
func (c *countingRunner) Delete(table, chain string, spec ...string) error {
	return c.count(c.Runner.Delete(table, chain, spec...))
}
func (c *countingRunner) DeleteById(table, chain string, id int) error {
	return c.count(c.Runner.DeleteById(table, chain, id))
}

func assertNetnsTables(t *testing.T, ns, nat, filter string) {
	t.Helper()
	if got := netnsutil.MustExec(t, ns, "iptables", "-t", "nat", "-S"); got != nat {
		t.Errorf("iptables -t nat -S in %s\n got:\n%s\nwant:\n%s", ns, got, nat)
	}
	if got := netnsutil.MustExec(t, ns, "iptables", "-S"); got != filter {
		t.Errorf("iptables -S in %s\n got:\n%s\nwant:\n%s", ns, got, filter)
	}
}

// addRuleLines runs "iptables -t <table> -A ..." for each iptables -S line.
func addRuleLines(t *testing.T, ns, table, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		args := append([]string{"iptables", "-t", table}, splitRuleLine(t, line)...)
		netnsutil.MustExec(t, ns, args...)
	}
}

func TestNetnsManagerMatchesFlannel(t *testing.T) {
	ns := netnsutil.NewT(t, "ipt")
	r := newRunnerInNetns(t, ns, goipt.ProtocolIPv4)
	if !r.HasRandomFully() {
		t.Skip("skipping: this iptables lacks --random-fully, the rules of docs/compatibility.md use it")
	}
	m := newTestManager(t, testOptions(r))
	ensure(t, m)
	assertNetnsTables(t, ns, observedNAT, observedFilter)

	steps := []struct {
		name       string
		damage     func()
		wantWrites int
	}{
		{"in place", func() {}, 0},
		{"rule deleted", func() {
			netnsutil.MustExec(t, ns, "iptables", "-t", "nat", "-D", MasqChain, "3")
		}, 1},
		{"jump deleted", func() {
			netnsutil.MustExec(t, ns, "iptables", "-D", "FORWARD", "-m", "comment", "--comment", "flanneld forward", "-j", ForwardChain)
		}, 1},
		{"chain flushed", func() {
			netnsutil.MustExec(t, ns, "iptables", "-t", "nat", "-F", MasqChain)
		}, 6},
	}
	for _, s := range steps {
		s.damage()
		r.writes = 0
		ensure(t, m)
		assertNetnsTables(t, ns, observedNAT, observedFilter)
		if r.writes != s.wantWrites {
			t.Errorf("%s: repair took %d writes, want %d", s.name, r.writes, s.wantWrites)
		}
	}

	// flanneld v0.11's unlabelled rules, as on a node switching from it:
	// removed at start (a new Manager's first check)...
	addV011 := func() {
		addRuleLines(t, ns, "nat", strings.ReplaceAll(observedV011NAT, "10.244.15.0/24", testSubnet.String()))
		addRuleLines(t, ns, "filter", observedV011Forward)
	}
	addV011()
	started := newTestManager(t, testOptions(r))
	r.writes = 0
	ensure(t, started)
	assertNetnsTables(t, ns, observedNAT, observedFilter)
	if r.writes != 6 {
		t.Errorf("v0.11 rules at start: removal took %d writes, want 6", r.writes)
	}
	// ...but once running, an identical unlabelled rule is the
	// administrator's (docs/compatibility.md, "iptables": previous rules are removed at start).
	addRuleLines(t, ns, "filter", observedV011Forward)
	r.writes = 0
	ensure(t, started)
	if r.writes != 0 {
		t.Errorf("a running manager deleted %d unlabelled FORWARD rules, want none", r.writes)
	}
}

func TestNetnsManagerIPv6(t *testing.T) {
	ns := netnsutil.NewT(t, "ip6t")
	r := newRunnerInNetns(t, ns, goipt.ProtocolIPv6)
	o := Options{
		Runner: r, Masquerade: true, ForwardRules: true, RandomFullyDisabled: true,
		Network: netip.MustParsePrefix("fd00:10::/48"), PodSubnet: netip.MustParsePrefix("fd00:10:0:5::/64"),
	}
	m := newTestManager(t, o)
	ensure(t, m)
	want := `-A FLANNEL-POSTRTG -s fd00:10::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE`
	if got := netnsutil.MustExec(t, ns, "ip6tables", "-t", "nat", "-S"); !strings.Contains(got, want+"\n") {
		t.Fatalf("ip6tables -t nat -S lacks %q:\n%s", want, got)
	}
	r.writes = 0
	ensure(t, m)
	if r.writes != 0 {
		t.Fatalf("second Ensure made %d writes, want 0", r.writes)
	}
}

// peerLab is two namespaces on a veth: a (192.0.2.1, runs the filter) and
// b, which sends from 192.0.2.2 and 192.0.2.3; or, for IPv6, a at
// 2001:db8:1::1 and b sending from 2001:db8:1::2 and 2001:db8:1::3.
type peerLab struct {
	a, b  string
	local net.IP // a's address
	tool  string // iptables or ip6tables
}

func newPeerLab(t *testing.T) peerLab {
	return newPeerLabFamily(t, false)
}

func newPeerLabFamily(t *testing.T, ipv6 bool) peerLab {
	l := peerLab{a: netnsutil.NewT(t, "pfa"), b: netnsutil.NewT(t, "pfb"), local: net.IPv4(192, 0, 2, 1), tool: "iptables"}
	addrs := []string{"192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24"}
	var flags []string
	if ipv6 {
		l.local, l.tool = net.ParseIP("2001:db8:1::1"), "ip6tables"
		addrs = []string{"2001:db8:1::1/64", "2001:db8:1::2/64", "2001:db8:1::3/64"}
		flags = []string{"nodad"} // usable at once, no duplicate address detection wait
	}
	add := func(ns, addr, dev string) {
		netnsutil.MustExec(t, ns, append([]string{"ip", "addr", "add", addr, "dev", dev}, flags...)...)
	}
	netnsutil.MustExec(t, l.a, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", l.b)
	add(l.a, addrs[0], "va")
	netnsutil.MustExec(t, l.a, "ip", "link", "set", "va", "up")
	add(l.b, addrs[1], "vb")
	add(l.b, addrs[2], "vb")
	netnsutil.MustExec(t, l.b, "ip", "link", "set", "vb", "up")
	return l
}

// listen opens a UDP socket on a's address, port 8472, inside a.
func (l peerLab) listen(t *testing.T) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := netnsutil.Do(l.a, func() (err error) {
		c, err = net.ListenUDP("udp", &net.UDPAddr{IP: l.local, Port: DefaultVXLANPort})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send sends payload from source (an address of b) to a's address, port 8472.
func (l peerLab) send(t *testing.T, source, payload string) {
	t.Helper()
	err := netnsutil.Do(l.b, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(source)}, &net.UDPAddr{IP: l.local, Port: DefaultVXLANPort})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectOnly sends from blocked then from allowed; the veth keeps their
// order, so the first datagram to arrive must be the allowed one.
func (l peerLab) expectOnly(t *testing.T, c *net.UDPConn, allowed, blocked string) {
	t.Helper()
	l.send(t, blocked, "from "+blocked)
	l.send(t, allowed, "from "+allowed)
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no datagram from allowed %s: %v", allowed, err)
	}
	if got := string(buf[:n]); got != "from "+allowed || from.IP.String() != allowed {
		t.Fatalf("received %q from %s, want only the one from %s", got, from, allowed)
	}
}

// counters returns the packet counters of the ACCEPT and DROP rules of
// OVERLAYD-VXLAN in a.
func (l peerLab) counters(t *testing.T) (accepted, dropped int) {
	t.Helper()
	out := netnsutil.MustExec(t, l.a, l.tool, "-n", "-v", "-x", "-L", PeerChain)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		switch f[2] {
		case "ACCEPT":
			accepted = n
		case "DROP":
			dropped = n
		}
	}
	return accepted, dropped
}

func TestNetnsPeerFilter(t *testing.T) {
	l := newPeerLab(t)
	r := newRunnerInNetns(t, l.a, goipt.ProtocolIPv4)
	ipset := ipsetInNetns(l.a)
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: r, IPSet: ipset})
	must(t, err)
	must(t, pf.SetPeers(addrs("192.0.2.2")))
	if got := netnsutil.MustExec(t, l.a, "iptables", "-S"); got != peerFilterTable {
		t.Fatalf("iptables -S\n got:\n%s\nwant:\n%s", got, peerFilterTable)
	}
	conn := l.listen(t)
	l.expectOnly(t, conn, "192.0.2.2", "192.0.2.3")
	if acc, drop := l.counters(t); acc != 1 || drop != 1 {
		t.Fatalf("counters: %d accepted, %d dropped; want 1 and 1", acc, drop)
	}

	must(t, pf.SetPeers(addrs("192.0.2.3", "198.51.100.7")))
	l.expectOnly(t, conn, "192.0.2.3", "192.0.2.2")

	r.writes = 0
	must(t, pf.Ensure())
	if r.writes != 0 {
		t.Fatalf("Ensure on a filter in place made %d writes", r.writes)
	}
	netnsutil.MustExec(t, l.a, "iptables", "-D", inputChain, "1")
	must(t, pf.Ensure())
	if got := netnsutil.MustExec(t, l.a, "iptables", "-S"); got != peerFilterTable {
		t.Fatalf("after repair, iptables -S\n got:\n%s\nwant:\n%s", got, peerFilterTable)
	}

	must(t, RemovePeerFilter(r, ipset))
	if got := netnsutil.MustExec(t, l.a, "iptables", "-S"); got != emptyFilterTable {
		t.Fatalf("after RemovePeerFilter, iptables -S:\n%s", got)
	}
	if got := netnsutil.MustExec(t, l.a, "ipset", "list", "-n"); strings.TrimSpace(got) != "" {
		t.Fatalf("after RemovePeerFilter, sets left: %q", got)
	}
	must(t, RemovePeerFilter(r, ipset))
}

// More peers than ipset's default maxelem (65536) still go in one swap.
func TestNetnsPeerSetSwapsLargeSets(t *testing.T) {
	ns := netnsutil.NewT(t, "pfs")
	r := newRunnerInNetns(t, ns, goipt.ProtocolIPv4)
	ipset := ipsetInNetns(ns)
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: r, IPSet: ipset})
	must(t, err)
	many := make([]netip.Addr, 0, 70000)
	for i := range 70000 {
		many = append(many, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	must(t, pf.SetPeers(many))
	out := netnsutil.MustExec(t, ns, "ipset", "save", PeerSetName)
	if n := strings.Count(out, "\nadd "); n != len(many) {
		t.Fatalf("set holds %d members, want %d", n, len(many))
	}
	must(t, pf.SetPeers(addrs("192.0.2.2")))
	if got, _ := ipset.Save(PeerSetName); strings.Count(got, "\nadd ") != 1 {
		t.Fatalf("after shrinking:\n%s", got)
	}
}
