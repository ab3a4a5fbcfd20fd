package iptables

import (
	"net/netip"
	"strings"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/labtest"
)

// The IPv6 golden: what flanneld v0.28.10 leaves in ip6tables with
// EnableIPv6, IPv6Network 2001:db8:1000::/48, node IPv6 subnet
// 2001:db8:1000:3e::/64 (captured in the lab; test/e2e checks the real
// flanneld against the same strings).
var (
	testNetwork6 = netip.MustParsePrefix("2001:db8:1000::/48")
	testSubnet6  = netip.MustParsePrefix("2001:db8:1000:3e::/64")
	observedNAT6 = labtest.FlanneldNAT6(testNetwork6.String(), testSubnet6.String())
	observedFwd6 = labtest.FlanneldFilter6(testNetwork6.String())
)

func testOptions6(r Runner) Options {
	return Options{Runner: r, Network: testNetwork6, PodSubnet: testSubnet6, Masquerade: true, ForwardRules: true}
}

func TestEnsureIPv6MatchesFlanneld(t *testing.T) {
	tests := []struct {
		name               string
		supported, disable bool
		wantRandomFully    bool
	}{
		{"random-fully supported", true, false, true},
		{"random-fully unsupported", false, false, false},
		{"random-fully disabled", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv6)
			f.randomFully = tt.supported
			o := testOptions6(f)
			o.RandomFullyDisabled = tt.disable
			m := newTestManager(t, o)
			ensure(t, m)
			want := observedNAT6
			if !tt.wantRandomFully {
				want = strings.ReplaceAll(want, " --random-fully", "")
			}
			assertTables(t, f, want, observedFwd6)
			f.writes = 0
			ensure(t, m)
			if f.writes != 0 {
				t.Fatalf("second Ensure made %d writes, want 0", f.writes)
			}
		})
	}
}

// Rules of the previous IPv6 network and subnet (the old subnet file's
// FLANNEL_IPV6_*) left in our chains go; unlabelled ip6tables rules stay:
// flannel v0.11 wrote none, so an identical rule is the administrator's.
func TestEnsureIPv6RemovesPreviousRulesKeepsUnlabelled(t *testing.T) {
	prevNet, prevSub := netip.MustParsePrefix("2001:db8:2000::/48"), netip.MustParsePrefix("2001:db8:2000:7::/64")
	old := strings.NewReplacer(testNetwork6.String(), prevNet.String(), testSubnet6.String(), prevSub.String())
	const adminNAT = "-A POSTROUTING -s 2001:db8:1000::/48 -d 2001:db8:1000::/48 -j RETURN"
	const adminFwd = "-A FORWARD -s 2001:db8:1000::/48 -j ACCEPT"
	f := newFakeRunner(goipt.ProtocolIPv6)
	f.seed(t, "nat", old.Replace(observedNAT6)+adminNAT)
	f.seed(t, "filter", old.Replace(observedFwd6)+adminFwd)
	o := testOptions6(f)
	o.PrevNetwork, o.PrevSubnet = prevNet, prevSub
	ensure(t, newTestManager(t, o))
	wantNAT := strings.Replace(observedNAT6, "-A FLANNEL-POSTRTG -m mark", adminNAT+"\n-A FLANNEL-POSTRTG -m mark", 1)
	wantFwd := strings.Replace(observedFwd6, "-A FLANNEL-FWD -s", adminFwd+"\n-A FLANNEL-FWD -s", 1)
	assertTables(t, f, wantNAT, wantFwd)
}

// familyReg is reg with a family label, as the daemon registers each
// family's managers on a dual-stack node.
func familyReg(reg prometheus.Registerer, family string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"family": family}, reg)
}

// On a dual-stack node both families' managers export the same series,
// told apart by a family label; each counts its own checks and repairs.
func TestTwoFamiliesMetricsByLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	o4 := testOptions(newFakeRunner(goipt.ProtocolIPv4))
	o4.Registerer = familyReg(reg, "ipv4")
	f6 := newFakeRunner(goipt.ProtocolIPv6)
	o6 := testOptions6(f6)
	o6.Registerer = familyReg(reg, "ipv6")
	m4, m6 := newTestManager(t, o4), newTestManager(t, o6)
	ensure(t, m4)
	ensure(t, m6)
	f6.tables["nat"][3].rules = nil // POSTROUTING: the jump to FLANNEL-POSTRTG is gone
	ensure(t, m6)
	want := map[string]float64{}
	for fam, n := range map[string]float64{"ipv4": 1, "ipv6": 2} {
		l := `family="` + fam + `"`
		want["overlayd_iptables_errors_total{"+l+"}"] = 0
		want["overlayd_iptables_resyncs_total{"+l+"}"] = n
		want[`overlayd_iptables_repairs_total{chain="FLANNEL-FWD",`+l+`,table="filter"}`] = 1
		want[`overlayd_iptables_repairs_total{chain="FLANNEL-POSTRTG",`+l+`,table="nat"}`] = 1
		want[`overlayd_iptables_repairs_total{chain="FORWARD",`+l+`,table="filter"}`] = 1
		want[`overlayd_iptables_repairs_total{chain="POSTROUTING",`+l+`,table="nat"}`] = n
	}
	assertMetrics(t, reg, want)
}

func TestTwoFamiliesPeerFilterMetricsByLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	f4, f6 := newFakeRunner(goipt.ProtocolIPv4), newFakeRunner(goipt.ProtocolIPv6)
	pf4, err := NewPeerFilter(PeerFilterOptions{Runner: f4, IPSet: newFakeIPSet(f4), Registerer: familyReg(reg, "ipv4")})
	must(t, err)
	pf6, err := NewPeerFilter(PeerFilterOptions{Runner: f6, IPSet: newFakeIPSet(f6), Registerer: familyReg(reg, "ipv6")})
	must(t, err)
	must(t, pf4.SetPeers(addrs("192.0.2.2")))
	must(t, pf6.SetPeers(addrs("2001:db8:1::2", "2001:db8:1::3")))
	assertMetrics(t, reg, map[string]float64{
		`overlayd_vxlan_peer_filter_peers{family="ipv4"}`:           1,
		`overlayd_vxlan_peer_filter_set_swaps_total{family="ipv4"}`: 1,
		`overlayd_vxlan_peer_filter_repairs_total{family="ipv4"}`:   2,
		`overlayd_vxlan_peer_filter_errors_total{family="ipv4"}`:    0,
		`overlayd_vxlan_peer_filter_peers{family="ipv6"}`:           2,
		`overlayd_vxlan_peer_filter_set_swaps_total{family="ipv6"}`: 1,
		`overlayd_vxlan_peer_filter_repairs_total{family="ipv6"}`:   2,
		`overlayd_vxlan_peer_filter_errors_total{family="ipv6"}`:    0,
	})
}

// The IPv6 filter is the IPv4 one in ip6tables, matching the inet6 set.
func TestPeerFilterIPv6Rules(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv6)
	s := newFakeIPSet(f)
	pf := newTestPeerFilter(t, f, s, 0)
	must(t, pf.SetPeers(addrs("2001:db8:1::2")))
	want := strings.ReplaceAll(peerFilterTable, PeerSetName+" ", PeerSetName+"6 ")
	if got := f.save("filter"); got != want {
		t.Fatalf("ip6tables -S\n got:\n%s\nwant:\n%s", got, want)
	}
}
