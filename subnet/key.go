package subnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultPrefix is flannel's default etcd prefix.
const DefaultPrefix = "/coreos.com/network"

// ConfigKey returns <prefix>/config.
func ConfigKey(prefix string) string { return strings.TrimRight(prefix, "/") + "/config" }

// SubnetsDir returns <prefix>/subnets/ (with the trailing slash).
func SubnetsDir(prefix string) string { return strings.TrimRight(prefix, "/") + "/subnets/" }

// KeyName returns a lease key's last element, "10.5.34.0-24".
func KeyName(subnet netip.Prefix) string {
	return fmt.Sprintf("%s-%d", subnet.Addr(), subnet.Bits())
}

// LeaseKey returns the full key of a lease, <prefix>/subnets/10.5.34.0-24.
func LeaseKey(prefix string, subnet netip.Prefix) string {
	return SubnetsDir(prefix) + KeyName(subnet)
}

// ParseKeyName parses a lease key's last element. The dual-stack form
// "10.5.34.0-24&fc00:0:0:1::-64" yields the IPv4 part (the IPv6 part must
// still be a valid masked IPv6 subnet); an IPv6-only key is an error
// (overlayd programs IPv4). The subnet must be masked and the prefix length
// written in canonical decimal, so that KeyName gives the name back.
func ParseKeyName(name string) (netip.Prefix, error) {
	v4part, v6part, dual := strings.Cut(name, "&")
	p, err := parseKeyPart(v4part, true)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lease key %q: %w", name, err)
	}
	if dual {
		if _, err := parseKeyPart(v6part, false); err != nil {
			return netip.Prefix{}, fmt.Errorf("lease key %q: IPv6 part: %w", name, err)
		}
	}
	return p, nil
}

// parseKeyPart parses "<ip>-<prefix length>" of one family.
func parseKeyPart(part string, want4 bool) (netip.Prefix, error) {
	addrPart, lenPart, ok := strings.Cut(part, "-")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%q: want <ip>-<prefix length>", part)
	}
	addr, err := netip.ParseAddr(addrPart)
	family, maxBits := "IPv4", 32
	if !want4 {
		family, maxBits = "IPv6", 128
	}
	if err != nil || addr.Is4() != want4 || addr.Zone() != "" || addr.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an %s address", addrPart, family)
	}
	bits, ok := parseDecimal(lenPart)
	if !ok || bits > maxBits {
		return netip.Prefix{}, fmt.Errorf("prefix length %q is not 0..%d", lenPart, maxBits)
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set", p)
	}
	return p, nil
}

// parseDecimal accepts only canonical unsigned decimals ("0", "24"; not
// "+24", "024" or "-0"), at most three digits.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ParseLeaseKey parses a full key below SubnetsDir(prefix).
func ParseLeaseKey(prefix, key string) (netip.Prefix, error) {
	dir := SubnetsDir(prefix)
	if !strings.HasPrefix(key, dir) {
		return netip.Prefix{}, fmt.Errorf("lease key %q: not under %s", key, dir)
	}
	return ParseKeyName(strings.TrimPrefix(key, dir))
}
