package iptables

import (
	"net/netip"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"
)

// Rule is one iptables rule: where it lives and its rulespec, written in the
// canonical form iptables -S prints back, so that listed rules can be compared
// with wanted ones as strings.
type Rule struct {
	Table string
	Chain string
	Spec  []string
}

// String renders the rule the way iptables -S / iptables-save print it:
// "-A CHAIN args...", with comments quoted as iptables-save quotes them.
func (r Rule) String() string {
	return appendLine(r.Chain, r.Spec)
}

func appendLine(chain string, spec []string) string {
	var b strings.Builder
	b.WriteString("-A ")
	b.WriteString(chain)
	for i, arg := range spec {
		b.WriteByte(' ')
		if i > 0 && spec[i-1] == "--comment" {
			b.WriteString(saveQuote(arg))
			continue
		}
		b.WriteString(arg)
	}
	return b.String()
}

// saveQuote quotes a string argument as xtables_save_string does: bare when
// it is made only of letters, digits, '-' and '_', otherwise in double quotes
// with double quotes, backslashes and single quotes escaped by a backslash.
func saveQuote(s string) string {
	if isBareWord(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func isBareWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		bare := c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !bare {
			return false
		}
	}
	return true
}

// chainRules returns the "-A <chain> ..." lines of an iptables -S listing,
// dropping the -N / -P header line.
func chainRules(lines []string, chain string) []string {
	prefix := "-A " + chain + " "
	rules := make([]string, 0, len(lines))
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			rules = append(rules, l)
		}
	}
	return rules
}

// familyName names the runner's address family in errors and logs.
func familyName(p goipt.Protocol) string {
	if p == goipt.ProtocolIPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// toolName names the command of the runner's family in logs and errors.
func toolName(p goipt.Protocol) string {
	if p == goipt.ProtocolIPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// protoOfAddr returns the family whose tables an address belongs in
// (iptables for IPv4, ip6tables for IPv6).
func protoOfAddr(a netip.Addr) goipt.Protocol {
	if a.Unmap().Is4() {
		return goipt.ProtocolIPv4
	}
	return goipt.ProtocolIPv6
}
