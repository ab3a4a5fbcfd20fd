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

// LeaseID names one lease: its IPv4 subnet, its IPv6 subnet, or both
// (docs/compatibility.md, "IPv6 and dual-stack"). An IPv4-only lease has
// an invalid IPv6Subnet, an IPv6-only lease an invalid Subnet.
type LeaseID struct {
	Subnet     netip.Prefix
	IPv6Subnet netip.Prefix
}

// ID returns the lease's identity (its key).
func (l Lease) ID() LeaseID { return LeaseID{Subnet: l.Subnet, IPv6Subnet: l.IPv6Subnet} }

// IsValid reports whether the ID names at least one subnet.
func (id LeaseID) IsValid() bool { return id.Subnet.IsValid() || id.IPv6Subnet.IsValid() }

// KeyName returns the key's last element: "10.5.34.0-24" (IPv4 only),
// "10.5.34.0-24&fc00:0:0:1::-64" (dual-stack) or "0.0.0.0-0&fc00:0:0:1::-64"
// (IPv6 only: flanneld v0.28 writes an empty IPv4 part as 0.0.0.0-0). The
// IPv6 address is lower-case and compressed.
func (id LeaseID) KeyName() string {
	if !id.IPv6Subnet.IsValid() {
		return KeyName(id.Subnet)
	}
	v4 := ipv6OnlyKeyPart
	if id.Subnet.IsValid() {
		v4 = KeyName(id.Subnet)
	}
	return fmt.Sprintf("%s&%s-%d", v4, id.IPv6Subnet.Addr(), id.IPv6Subnet.Bits())
}

// String is "10.5.34.0/24", "10.5.34.0/24+fc00:0:0:1::/64" or
// "fc00:0:0:1::/64" (for logs and errors; KeyName is the key form).
func (id LeaseID) String() string {
	switch {
	case !id.IPv6Subnet.IsValid():
		return id.Subnet.String()
	case !id.Subnet.IsValid():
		return id.IPv6Subnet.String()
	}
	return id.Subnet.String() + "+" + id.IPv6Subnet.String()
}

// ipv6OnlyKeyPart is the IPv4 part of an IPv6-only lease's key.
const ipv6OnlyKeyPart = "0.0.0.0-0"

// KeyName returns an IPv4 lease key's last element, "10.5.34.0-24".
func KeyName(subnet netip.Prefix) string {
	return fmt.Sprintf("%s-%d", subnet.Addr(), subnet.Bits())
}

// LeaseKey returns the full key of an IPv4-only lease,
// <prefix>/subnets/10.5.34.0-24.
func LeaseKey(prefix string, subnet netip.Prefix) string {
	return SubnetsDir(prefix) + KeyName(subnet)
}

// LeaseIDKey returns the full key of any lease, <prefix>/subnets/<KeyName>.
func LeaseIDKey(prefix string, id LeaseID) string {
	return SubnetsDir(prefix) + id.KeyName()
}

// ParseKeyName parses a lease key's last element and returns its IPv4
// subnet; an IPv6-only key is an error. See ParseLeaseIDName.
func ParseKeyName(name string) (netip.Prefix, error) {
	id, err := ParseLeaseIDName(name)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !id.Subnet.IsValid() {
		return netip.Prefix{}, fmt.Errorf("lease key %q: IPv6-only, it has no IPv4 subnet", name)
	}
	return id.Subnet, nil
}

// ParseLeaseIDName parses a lease key's last element: "<v4>-<len>" or
// "<v4>-<len>&<v6>-<len>", where a "0.0.0.0-0" IPv4 part with an IPv6 part
// is an IPv6-only lease. Subnets must be masked, prefix lengths canonical
// decimals and the IPv6 address in its canonical (lower-case, compressed)
// form, so that KeyName gives the name back.
func ParseLeaseIDName(name string) (LeaseID, error) {
	v4part, v6part, dual := strings.Cut(name, "&")
	p, err := parseKeyPart(v4part, true)
	if err != nil {
		return LeaseID{}, fmt.Errorf("lease key %q: %w", name, err)
	}
	if !dual {
		return LeaseID{Subnet: p}, nil
	}
	p6, err := parseKeyPart(v6part, false)
	if err != nil {
		return LeaseID{}, fmt.Errorf("lease key %q: IPv6 part: %w", name, err)
	}
	if v4part == ipv6OnlyKeyPart {
		return LeaseID{IPv6Subnet: p6}, nil
	}
	return LeaseID{Subnet: p, IPv6Subnet: p6}, nil
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
	if addr.String() != addrPart {
		return netip.Prefix{}, fmt.Errorf("%q is not in canonical form (want %s)", addrPart, addr)
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

// ParseLeaseKey parses a full key below SubnetsDir(prefix) and returns its
// IPv4 subnet (see ParseKeyName).
func ParseLeaseKey(prefix, key string) (netip.Prefix, error) {
	name, err := keyNameUnder(prefix, key)
	if err != nil {
		return netip.Prefix{}, err
	}
	return ParseKeyName(name)
}

// ParseLeaseIDKey parses a full key below SubnetsDir(prefix), any family.
func ParseLeaseIDKey(prefix, key string) (LeaseID, error) {
	name, err := keyNameUnder(prefix, key)
	if err != nil {
		return LeaseID{}, err
	}
	return ParseLeaseIDName(name)
}

func keyNameUnder(prefix, key string) (string, error) {
	dir := SubnetsDir(prefix)
	if !strings.HasPrefix(key, dir) {
		return "", fmt.Errorf("lease key %q: not under %s", key, dir)
	}
	return strings.TrimPrefix(key, dir), nil
}
