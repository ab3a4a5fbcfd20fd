package subnet

import (
	"fmt"
	"net/netip"
	"strconv"
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
// "10.5.34.0-24&fc00:0:0:1::-64" yields the IPv4 part; an IPv6-only key is
// an error (overlayd programs IPv4). The subnet must be masked.
func ParseKeyName(name string) (netip.Prefix, error) {
	v4part, _, _ := strings.Cut(name, "&")
	addrPart, lenPart, ok := strings.Cut(v4part, "-")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("lease key %q: want <ip>-<prefix length>", name)
	}
	addr, err := netip.ParseAddr(addrPart)
	if err != nil || !addr.Is4() {
		return netip.Prefix{}, fmt.Errorf("lease key %q: %q is not an IPv4 address", name, addrPart)
	}
	bits, err := strconv.Atoi(lenPart)
	if err != nil || bits < 0 || bits > 32 || (len(lenPart) > 1 && lenPart[0] == '0') {
		return netip.Prefix{}, fmt.Errorf("lease key %q: prefix length %q is not 0..32", name, lenPart)
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("lease key %q: %s has host bits set", name, p)
	}
	return p, nil
}

// ParseLeaseKey parses a full key below SubnetsDir(prefix).
func ParseLeaseKey(prefix, key string) (netip.Prefix, error) {
	dir := SubnetsDir(prefix)
	if !strings.HasPrefix(key, dir) {
		return netip.Prefix{}, fmt.Errorf("lease key %q: not under %s", key, dir)
	}
	return ParseKeyName(strings.TrimPrefix(key, dir))
}
