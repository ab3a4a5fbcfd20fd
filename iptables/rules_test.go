package iptables

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/labtest"
)

// Golden lines: docs/compatibility.md, flanneld v0.28.8, network 10.244.0.0/16,
// node subnet 10.244.99.0/24.
var (
	observedNAT    = labtest.FlanneldNAT("10.244.99.0/24")
	observedFilter = labtest.FlanneldFilter
)

const (
	// flanneld v0.11.0 wrote these straight into POSTROUTING / FORWARD
	// (its node subnet was 10.244.15.0/24).
	observedV011NAT = `-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN
-A POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully
-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.15.0/24 -j RETURN
-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully`
	observedV011Forward = `-A FORWARD -s 10.244.0.0/16 -j ACCEPT
-A FORWARD -d 10.244.0.0/16 -j ACCEPT`
)

var (
	testNetwork = netip.MustParsePrefix("10.244.0.0/16")
	testSubnet  = netip.MustParsePrefix("10.244.99.0/24")
)

// linesOf returns the "-A <chain>" lines of an iptables -S text.
func linesOf(text, chain string) []string {
	return chainRules(strings.Split(strings.TrimSpace(text), "\n"), chain)
}

func ruleStrings(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

func TestMasqRulesMatchFlannel(t *testing.T) {
	withRandom := linesOf(observedNAT, MasqChain)
	var withoutRandom []string
	for _, l := range withRandom {
		withoutRandom = append(withoutRandom, strings.TrimSuffix(l, " --random-fully"))
	}
	tests := []struct {
		name        string
		randomFully bool
		want        []string
	}{
		{"random-fully", true, withRandom},
		{"plain", false, withoutRandom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ruleStrings(MasqRules(testNetwork, testSubnet, tt.randomFully))
			assertLines(t, got, tt.want)
		})
	}
}

func TestForwardRulesMatchFlannel(t *testing.T) {
	assertLines(t, ruleStrings(ForwardRules(testNetwork)), linesOf(observedFilter, ForwardChain))
}

func TestJumpsMatchFlannel(t *testing.T) {
	assertLines(t, []string{masqJump().String()}, linesOf(observedNAT, postroutingChain))
	assertLines(t, []string{forwardJump().String()}, linesOf(observedFilter, forwardChain))
}

func TestLegacyRulesMatchFlannelV011(t *testing.T) {
	old := netip.MustParsePrefix("10.244.15.0/24")
	got := ruleStrings(legacyMasqRules(testNetwork, old))
	assertLines(t, got[:4], linesOf(observedV011NAT, postroutingChain))
	assertLines(t, ruleStrings(legacyForwardRules(testNetwork)), linesOf(observedV011Forward, forwardChain))
}

func TestMasqRulesIPv6UsesMulticastFF00(t *testing.T) {
	rules := ruleStrings(MasqRules(netip.MustParsePrefix("fd00:10::/48"), netip.MustParsePrefix("fd00:10:0:5::1/64"), false))
	want := `-A FLANNEL-POSTRTG -s fd00:10::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE`
	if rules[4] != want {
		t.Fatalf("rule 5:\n got %s\nwant %s", rules[4], want)
	}
	if want := `-A FLANNEL-POSTRTG -s fd00:10:0:5::/64 -d fd00:10::/48 -m comment --comment "flanneld masq" -j RETURN`; rules[1] != want {
		t.Fatalf("rule 2 (subnet must be masked):\n got %s\nwant %s", rules[1], want)
	}
}

func TestRuleStringQuotesLikeIptablesSave(t *testing.T) {
	tests := []struct{ comment, want string }{
		{"flanneld masq", `"flanneld masq"`},
		{"foo", `foo`},
		{"foo-bar_1", `foo-bar_1`},
		{`a"b\c`, `"a\"b\\c"`},
		{"it's", `"it\'s"`},
		{"", `""`},
		{"10.0.0.0/8", `"10.0.0.0/8"`},
	}
	for _, tt := range tests {
		r := Rule{Chain: "C", Spec: []string{"-s", "10.0.0.0/8", "-m", "comment", "--comment", tt.comment, "-j", "ACCEPT"}}
		want := "-A C -s 10.0.0.0/8 -m comment --comment " + tt.want + " -j ACCEPT"
		if got := r.String(); got != want {
			t.Errorf("comment %q:\n got %s\nwant %s", tt.comment, got, want)
		}
	}
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines differ\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
