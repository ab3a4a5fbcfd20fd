package iptables

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/prometheus/client_golang/prometheus"
)

const peerFilterTable = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N OVERLAYD-VXLAN
-A INPUT -m comment --comment "overlayd vxlan peer filter" -j OVERLAYD-VXLAN
-A OVERLAYD-VXLAN -p udp -m udp --dport 8472 -m set --match-set overlayd-vxlan-peers src -m comment --comment "overlayd vxlan peer filter" -j ACCEPT
-A OVERLAYD-VXLAN -p udp -m udp --dport 8472 -m comment --comment "overlayd vxlan peer filter" -j DROP
`

const emptyFilterTable = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n"

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func newTestPeerFilter(t *testing.T, f *fakeRunner, s *fakeIPSet, port int) *PeerFilter {
	t.Helper()
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: f, IPSet: s, Port: port})
	if err != nil {
		t.Fatalf("NewPeerFilter: %v", err)
	}
	return pf
}

func members(t *testing.T, s *fakeIPSet, set string) []string {
	t.Helper()
	st, ok := s.sets[set]
	if !ok {
		t.Fatalf("set %s missing; sets: %v", set, s.sets)
	}
	out := slices.Clone(st.members)
	slices.Sort(out)
	return out
}

func TestPeerFilterInstalls(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 0)
	must(t, pf.SetPeers(addrs("198.51.100.2", "192.0.2.2", "192.0.2.2")))
	if got := f.save("filter"); got != peerFilterTable {
		t.Fatalf("iptables -S\n got:\n%s\nwant:\n%s", got, peerFilterTable)
	}
	assertLines(t, members(t, s, PeerSetName), []string{"192.0.2.2", "198.51.100.2"})
	if names, _ := s.ListNames(); len(names) != 1 {
		t.Fatalf("sets left behind: %v", names)
	}
}

func TestPeerFilterInstallsNothingBeforeFirstPeers(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	must(t, newTestPeerFilter(t, f, s, 0).Ensure())
	if f.writes != 0 || s.restores != 0 {
		t.Fatalf("Ensure before SetPeers wrote %d rules and %d ipset batches", f.writes, s.restores)
	}
}

func TestPeerFilterJumpGoesFirstInInput(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	f.seed(t, "filter", "-A INPUT -p udp -j ACCEPT")
	pf := newTestPeerFilter(t, f, newFakeIPSet(f), 0)
	must(t, pf.SetPeers(addrs("192.0.2.2")))
	lines, _ := f.List("filter", "INPUT")
	if want := peerJump().String(); lines[1] != want {
		t.Fatalf("INPUT starts with %q, want %q", lines[1], want)
	}
}

func TestPeerFilterInPlaceMakesNoWrites(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 0)
	peers := addrs("192.0.2.2", "192.0.2.3")
	must(t, pf.SetPeers(peers))
	f.writes, s.restores = 0, 0
	must(t, pf.Ensure())
	must(t, pf.SetPeers([]netip.Addr{peers[1], peers[0], peers[1]}))
	if f.writes != 0 || s.restores != 0 {
		t.Fatalf("in place: %d rule writes and %d ipset batches, want none", f.writes, s.restores)
	}
}

func TestPeerFilterUpdatesPeersInOneSwap(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 0)
	must(t, pf.SetPeers(addrs("192.0.2.2", "192.0.2.3")))
	many := make([]netip.Addr, 0, 10000)
	for i := range 10000 {
		many = append(many, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	s.restores = 0
	must(t, pf.SetPeers(many))
	if s.restores != 1 {
		t.Fatalf("10,000 peers took %d ipset batches, want 1", s.restores)
	}
	if got := len(s.sets[PeerSetName].members); got != 10000 {
		t.Fatalf("set has %d members, want 10000", got)
	}
	must(t, pf.SetPeers(addrs("192.0.2.9")))
	assertLines(t, members(t, s, PeerSetName), []string{"192.0.2.9"})
	if f.writes != 4 {
		t.Fatalf("peer changes rewrote rules: %d writes in all, want the 4 of the first install", f.writes)
	}
}

func TestPeerFilterRepairs(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, f *fakeRunner, s *fakeIPSet)
	}{
		{"jump deleted", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, f.DeleteById("filter", "INPUT", 1))
		}},
		{"drop rule deleted", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, f.DeleteById("filter", PeerChain, 2))
		}},
		{"member deleted", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, s.Restore("del overlayd-vxlan-peers 192.0.2.3"))
		}},
		{"member added", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, s.Restore("add overlayd-vxlan-peers 203.0.113.66"))
		}},
		{"leftover temporary set", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, s.Restore("create overlayd-vxlan-peers-tmp hash:ip family inet\nadd overlayd-vxlan-peers-tmp 203.0.113.66\ndel overlayd-vxlan-peers 192.0.2.3"))
		}},
		{"everything gone", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, RemovePeerFilter(f, s))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			s := newFakeIPSet(f)
			pf := newTestPeerFilter(t, f, s, 0)
			must(t, pf.SetPeers(addrs("192.0.2.2", "192.0.2.3")))
			tt.damage(t, f, s)
			must(t, pf.Ensure())
			if got := f.save("filter"); got != peerFilterTable {
				t.Fatalf("iptables -S\n got:\n%s\nwant:\n%s", got, peerFilterTable)
			}
			assertLines(t, members(t, s, PeerSetName), []string{"192.0.2.2", "192.0.2.3"})
			if names, _ := s.ListNames(); len(names) != 1 {
				t.Fatalf("sets: %v, want only %s", names, PeerSetName)
			}
		})
	}
}

func TestPeerFilterSkipsOtherFamily(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 4789)
	must(t, pf.SetPeers(append(addrs("2001:db8::1", "::ffff:192.0.2.7"), netip.Addr{})))
	assertLines(t, members(t, s, PeerSetName), []string{"192.0.2.7"})
	if !strings.Contains(f.save("filter"), "--dport 4789 ") {
		t.Fatalf("port 4789 not used:\n%s", f.save("filter"))
	}
}

func TestPeerFilterIPv6(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv6)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 0)
	must(t, pf.SetPeers(addrs("2001:db8::2", "192.0.2.2")))
	assertLines(t, members(t, s, PeerSetName+"6"), []string{"2001:db8::2"})
	if fam := s.sets[PeerSetName+"6"].family; fam != "inet6" {
		t.Fatalf("set family %s, want inet6", fam)
	}
	must(t, RemovePeerFilter(f, s))
	if len(s.sets) != 0 {
		t.Fatalf("sets left: %v", s.sets)
	}
}

func TestRemovePeerFilter(t *testing.T) {
	tests := []struct {
		name string
		prep func(t *testing.T, f *fakeRunner, s *fakeIPSet)
	}{
		{"installed", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, newTestPeerFilter(t, f, s, 0).SetPeers(addrs("192.0.2.2")))
		}},
		{"installed twice on two ports, with a temporary set", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {
			must(t, newTestPeerFilter(t, f, s, 0).SetPeers(addrs("192.0.2.2")))
			must(t, f.Append("filter", "INPUT", "-p", "udp", "-m", "udp", "--dport", "4789", "-j", PeerChain))
			must(t, s.Restore("create overlayd-vxlan-peers-tmp hash:ip family inet"))
		}},
		{"nothing there", func(t *testing.T, f *fakeRunner, s *fakeIPSet) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			s := newFakeIPSet(f)
			f.seed(t, "filter", "-A INPUT -i lo -j ACCEPT")
			tt.prep(t, f, s)
			must(t, RemovePeerFilter(f, s))
			want := emptyFilterTable + "-A INPUT -i lo -j ACCEPT\n"
			if got := f.save("filter"); got != want {
				t.Fatalf("iptables -S after removal\n got:\n%s\nwant:\n%s", got, want)
			}
			if len(s.sets) != 0 {
				t.Fatalf("sets left: %v", s.sets)
			}
			f.writes = 0
			must(t, RemovePeerFilter(f, s))
			if f.writes != 0 {
				t.Fatalf("second removal made %d writes", f.writes)
			}
		})
	}
}

func TestPeerFilterReportsFailures(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	reg := prometheus.NewRegistry()
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: f, IPSet: s, Registerer: reg})
	must(t, err)
	injected := errors.New("ipset: Kernel error received: Operation not permitted")
	s.fail = injected
	if err := pf.SetPeers(addrs("192.0.2.2")); !errors.Is(err, injected) || !strings.Contains(err.Error(), PeerSetName) {
		t.Fatalf("SetPeers error = %v, want it to wrap the ipset failure and name the set", err)
	}
	if got := f.save("filter"); got != emptyFilterTable {
		t.Fatalf("rules installed although the set failed:\n%s", got)
	}
	s.fail = nil
	must(t, pf.Ensure())
	assertMetrics(t, reg, map[string]float64{
		"overlayd_vxlan_peer_filter_peers":           1,
		"overlayd_vxlan_peer_filter_set_swaps_total": 1,
		"overlayd_vxlan_peer_filter_repairs_total":   2,
		"overlayd_vxlan_peer_filter_errors_total":    1,
	})
}

func TestNewPeerFilterRejectsBadOptions(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	tests := []struct {
		o    PeerFilterOptions
		want string
	}{
		{PeerFilterOptions{}, "Runner is nil"},
		{PeerFilterOptions{Runner: f, Port: 70000}, "Port 70000"},
		{PeerFilterOptions{Runner: f, Port: -1}, "Port -1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.o.Port), func(t *testing.T) {
			if _, err := NewPeerFilter(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSavedMembers(t *testing.T) {
	out := "create s hash:ip family inet hashsize 1024 maxelem 65536\nadd s 192.0.2.2\nadd other 192.0.2.9\nadd s 2001:db8::1\n"
	got, err := savedMembers(out, "s")
	must(t, err)
	if !slices.Equal(got, addrs("192.0.2.2", "2001:db8::1")) {
		t.Fatalf("members = %v", got)
	}
	if _, err := savedMembers("add s not-an-ip\n", "s"); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("error = %v, want one naming the bad member", err)
	}
}

// TestPeerFilterExtraPorts: the health probe port is filtered as VXLAN's
// is: accepted from peers, dropped from anyone else.
func TestPeerFilterExtraPorts(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	s := newFakeIPSet(f)
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: f, IPSet: s, ExtraPorts: []int{8476}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, pf.SetPeers(addrs("192.0.2.2")))
	got := f.save("filter")
	for _, port := range []string{"8472", "8476"} {
		for _, verdict := range []string{"-m set --match-set overlayd-vxlan-peers src -m comment --comment \"overlayd vxlan peer filter\" -j ACCEPT", "-m comment --comment \"overlayd vxlan peer filter\" -j DROP"} {
			if want := "-A OVERLAYD-VXLAN -p udp -m udp --dport " + port + " " + verdict; !strings.Contains(got, want) {
				t.Errorf("no %q in\n%s", want, got)
			}
		}
	}
	if _, err := NewPeerFilter(PeerFilterOptions{Runner: f, ExtraPorts: []int{0}}); err == nil {
		t.Errorf("ExtraPorts 0 accepted")
	}
}
