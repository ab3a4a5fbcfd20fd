package iptables

import (
	"net/netip"
	"strings"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// The real ip6tables in a namespace ends up as flanneld v0.28.10 leaves
// it; the rules of the previous IPv6 network go; a warm check writes
// nothing.
func TestNetnsIPv6RulesMatchFlanneld(t *testing.T) {
	ns := netnsutil.NewT(t, "ip6f")
	r := newRunnerInNetns(t, ns, goipt.ProtocolIPv6)
	old := strings.NewReplacer(testNetwork6.String(), "2001:db8:2000::/48", testSubnet6.String(), "2001:db8:2000:7::/64")
	o := testOptions6(r)
	o.PrevNetwork, o.PrevSubnet = netip.MustParsePrefix("2001:db8:2000::/48"), netip.MustParsePrefix("2001:db8:2000:7::/64")
	prev := newTestManager(t, Options{Runner: r, Network: o.PrevNetwork, PodSubnet: o.PrevSubnet, Masquerade: true, ForwardRules: true})
	ensure(t, prev)
	if got := netnsutil.MustExec(t, ns, "ip6tables", "-t", "nat", "-S"); got != withRandomFully(r, old.Replace(observedNAT6)) {
		t.Fatalf("previous network's rules not in place:\n%s", got)
	}
	m := newTestManager(t, o)
	ensure(t, m)
	assertNetns6(t, ns, withRandomFully(r, observedNAT6), observedFwd6)
	r.writes = 0
	ensure(t, m)
	if r.writes != 0 {
		t.Fatalf("second Ensure made %d writes, want 0", r.writes)
	}
	netnsutil.MustExec(t, ns, "ip6tables", "-t", "nat", "-F", MasqChain)
	ensure(t, m)
	assertNetns6(t, ns, withRandomFully(r, observedNAT6), observedFwd6)
	if got := netnsutil.MustExec(t, ns, "iptables", "-t", "nat", "-S"); strings.Contains(got, MasqChain) {
		t.Fatalf("the IPv6 manager wrote into iptables:\n%s", got)
	}
}

// The IPv6 peer filter drops UDP to the VXLAN port from a non-peer IPv6
// address and lets the peer's through, in the real kernel.
func TestNetnsPeerFilterIPv6(t *testing.T) {
	l := newPeerLabFamily(t, true)
	r := newRunnerInNetns(t, l.a, goipt.ProtocolIPv6)
	ipset := ipsetInNetns(l.a)
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: r, IPSet: ipset})
	must(t, err)
	must(t, pf.Install()) // fail closed: empty set, everything dropped
	must(t, pf.SetPeers(addrs("2001:db8:1::2", "192.0.2.9")))
	want := strings.ReplaceAll(peerFilterTable, PeerSetName+" ", PeerSetName+"6 ")
	if got := netnsutil.MustExec(t, l.a, "ip6tables", "-S"); got != want {
		t.Fatalf("ip6tables -S\n got:\n%s\nwant:\n%s", got, want)
	}
	if got := netnsutil.MustExec(t, l.a, "iptables", "-S"); got != emptyFilterTable {
		t.Fatalf("the IPv6 filter wrote into iptables:\n%s", got)
	}
	conn := l.listen(t)
	l.expectOnly(t, conn, "2001:db8:1::2", "2001:db8:1::3")
	if acc, drop := l.counters(t); acc != 1 || drop != 1 {
		t.Fatalf("counters: %d accepted, %d dropped; want 1 and 1", acc, drop)
	}
	must(t, pf.SetPeers(addrs("2001:db8:1::3")))
	l.expectOnly(t, conn, "2001:db8:1::3", "2001:db8:1::2")

	must(t, RemoveAll(r, ipset))
	if got := netnsutil.MustExec(t, l.a, "ip6tables", "-S"); got != emptyFilterTable {
		t.Fatalf("after RemoveAll, ip6tables -S:\n%s", got)
	}
	if got := netnsutil.MustExec(t, l.a, "ipset", "list", "-n"); strings.TrimSpace(got) != "" {
		t.Fatalf("after RemoveAll, sets left: %q", got)
	}
}

func assertNetns6(t *testing.T, ns, nat, filter string) {
	t.Helper()
	if got := netnsutil.MustExec(t, ns, "ip6tables", "-t", "nat", "-S"); got != nat {
		t.Errorf("ip6tables -t nat -S\n got:\n%s\nwant:\n%s", got, nat)
	}
	if got := netnsutil.MustExec(t, ns, "ip6tables", "-S"); got != filter {
		t.Errorf("ip6tables -S\n got:\n%s\nwant:\n%s", got, filter)
	}
}

// withRandomFully drops --random-fully from want when the host's
// ip6tables cannot use it.
func withRandomFully(r Runner, want string) string {
	if r.HasRandomFully() {
		return want
	}
	return strings.ReplaceAll(want, " --random-fully", "")
}
