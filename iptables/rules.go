package iptables

import "net/netip"

// Chain names and comments shared with flanneld: using the same ones lets a
// node switch between the two without duplicates.
const (
	natTable    = "nat"
	filterTable = "filter"

	postroutingChain = "POSTROUTING"
	forwardChain     = "FORWARD"
	MasqChain        = "FLANNEL-POSTRTG"
	ForwardChain     = "FLANNEL-FWD"

	masqComment    = "flanneld masq"
	forwardComment = "flanneld forward"

	// kubeMasqMark is kube-proxy's masquerade mark: such packets are
	// kube-proxy's to masquerade, not ours.
	kubeMasqMark = "0x4000/0x4000"
)

// MasqRules returns the rules of FLANNEL-POSTRTG, in order: pod-to-pod traffic
// keeps its source address, traffic leaving the cluster network is masqueraded.
// network and pod must be of one family.
func MasqRules(network, pod netip.Prefix, randomFully bool) []Rule {
	cluster, own, mcast := network.Masked().String(), pod.Masked().String(), multicastRange(network)
	masq := []string{"-j", "MASQUERADE"}
	if randomFully {
		masq = append(masq, "--random-fully")
	}
	specs := [][]string{
		{"-m", "mark", "--mark", kubeMasqMark},
		{"-s", own, "-d", cluster},
		{"-s", cluster, "-d", own},
		{"!", "-s", cluster, "-d", own},
		{"-s", cluster, "!", "-d", mcast},
		{"!", "-s", cluster, "-d", cluster},
	}
	targets := [][]string{{"-j", "RETURN"}, {"-j", "RETURN"}, {"-j", "RETURN"}, {"-j", "RETURN"}, masq, masq}
	rules := make([]Rule, len(specs))
	for i, match := range specs {
		rules[i] = commented(natTable, MasqChain, match, masqComment, targets[i])
	}
	return rules
}

// ForwardRules returns the rules of FLANNEL-FWD: forward anything from or to
// the cluster network, whatever the host's FORWARD policy.
func ForwardRules(network netip.Prefix) []Rule {
	cluster := network.Masked().String()
	accept := []string{"-j", "ACCEPT"}
	return []Rule{
		commented(filterTable, ForwardChain, []string{"-s", cluster}, forwardComment, accept),
		commented(filterTable, ForwardChain, []string{"-d", cluster}, forwardComment, accept),
	}
}

func masqJump() Rule {
	return commented(natTable, postroutingChain, nil, masqComment, []string{"-j", MasqChain})
}

func forwardJump() Rule {
	return commented(filterTable, forwardChain, nil, forwardComment, []string{"-j", ForwardChain})
}

// legacyMasqRules returns the four POSTROUTING rules flannel v0.11 wrote for a
// network and subnet, in both the --random-fully and the plain form.
func legacyMasqRules(network, pod netip.Prefix) []Rule {
	cluster, own, mcast := network.Masked().String(), pod.Masked().String(), multicastRange(network)
	var rules []Rule
	for _, masq := range [][]string{{"-j", "MASQUERADE", "--random-fully"}, {"-j", "MASQUERADE"}} {
		specs := [][]string{
			{"-s", cluster, "-d", cluster, "-j", "RETURN"},
			append([]string{"-s", cluster, "!", "-d", mcast}, masq...),
			{"!", "-s", cluster, "-d", own, "-j", "RETURN"},
			append([]string{"!", "-s", cluster, "-d", cluster}, masq...),
		}
		for _, s := range specs {
			rules = append(rules, Rule{Table: natTable, Chain: postroutingChain, Spec: s})
		}
	}
	return rules
}

// legacyForwardRules returns the two FORWARD rules flannel v0.11 wrote.
func legacyForwardRules(network netip.Prefix) []Rule {
	cluster := network.Masked().String()
	return []Rule{
		{Table: filterTable, Chain: forwardChain, Spec: []string{"-s", cluster, "-j", "ACCEPT"}},
		{Table: filterTable, Chain: forwardChain, Spec: []string{"-d", cluster, "-j", "ACCEPT"}},
	}
}

func commented(table, chain string, match []string, comment string, target []string) Rule {
	spec := make([]string, 0, len(match)+4+len(target))
	spec = append(spec, match...)
	spec = append(spec, "-m", "comment", "--comment", comment)
	spec = append(spec, target...)
	return Rule{Table: table, Chain: chain, Spec: spec}
}

func multicastRange(network netip.Prefix) string {
	if network.Addr().Is4() {
		return "224.0.0.0/4"
	}
	return "ff00::/8"
}
