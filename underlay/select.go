package underlay

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Iface is one interface as the selection logic sees it.
type Iface struct {
	Name  string
	Index int
	MTU   int
	Up    bool
	// Addrs are its IPv4 and IPv6 addresses with their prefix lengths, in
	// kernel order.
	Addrs []netip.Prefix
}

// Host is a snapshot of what the selection needs from the kernel.
type Host interface {
	Interfaces() ([]Iface, error)
	// DefaultRouteIndex is the ifindex of the main table's default route
	// of one family (ipv6 false: 0.0.0.0/0, true: ::/0).
	DefaultRouteIndex(ipv6 bool) (int, error)
	// RouteTo returns the ifindex and source address the kernel would use
	// to reach dst (ip route get).
	RouteTo(dst netip.Addr) (int, netip.Addr, error)
}

// Spec is what the operator asked for.
type Spec struct {
	Ifaces        []string // --iface: names or IPs (either family), first that matches wins
	IfaceRegex    []string // --iface-regex: matched against IPs, then names
	IfaceCanReach netip.Addr
	// Families are the underlay families the node needs: IPv4 unless
	// IPv4Off, IPv6 when IPv6. The zero value is IPv4 only.
	IPv4Off, IPv6 bool
}

func (s Spec) wants4() bool { return !s.IPv4Off }

// Choice is the selected interface and bind addresses, and why. One
// interface carries both families, as with flanneld.
type Choice struct {
	Iface  Iface
	Addr   netip.Addr   // the IPv4 address the VXLAN device binds (local); invalid when IPv4 is off
	Prefix netip.Prefix // Addr with its prefix length: the node's underlay subnet
	// Addr6 and Prefix6 are the IPv6 counterparts of Addr and Prefix,
	// chosen only when the spec asks for IPv6 (flannel-v6.<VNI> binds Addr6).
	Addr6   netip.Addr
	Prefix6 netip.Prefix
	Reason  string
}

// Select applies flannel's order: --iface, then --iface-regex, then
// --iface-can-reach, else the default route's interface. With both
// families the interface is chosen once (by the first family a flag
// names, else IPv4) and the other family's address comes from the same
// interface.
func Select(h Host, spec Spec) (Choice, error) {
	if spec.IPv4Off && !spec.IPv6 {
		return Choice{}, errors.New("underlay: neither IPv4 nor IPv6 asked for")
	}
	ifaces, err := h.Interfaces()
	if err != nil {
		return Choice{}, fmt.Errorf("list interfaces: %w", err)
	}
	var c Choice
	switch {
	case len(spec.Ifaces) > 0:
		c, err = selectByIface(ifaces, spec)
	case len(spec.IfaceRegex) > 0:
		c, err = selectByRegex(ifaces, spec)
	case spec.IfaceCanReach.IsValid():
		c, err = selectCanReach(h, ifaces, spec)
	default:
		c, err = selectDefaultRoute(h, ifaces, spec)
	}
	if err != nil {
		return Choice{}, err
	}
	return c, nil
}

// fill completes c (its interface set, perhaps one family's address)
// with the first global address of every other family spec needs.
func fill(c Choice, spec Spec) (Choice, error) {
	if spec.wants4() && !c.Addr.IsValid() {
		p, ok := firstGlobal(c.Iface, false)
		if !ok {
			return Choice{}, fmt.Errorf("interface %s has no global unicast IPv4 address", c.Iface.Name)
		}
		c.Addr, c.Prefix = p.Addr(), p
	}
	if spec.IPv6 && !c.Addr6.IsValid() {
		p, ok := firstGlobal(c.Iface, true)
		if !ok {
			return Choice{}, fmt.Errorf("interface %s has no global unicast IPv6 address", c.Iface.Name)
		}
		c.Addr6, c.Prefix6 = p.Addr(), p
	}
	if !spec.wants4() {
		c.Addr, c.Prefix = netip.Addr{}, netip.Prefix{}
	}
	if !spec.IPv6 {
		c.Addr6, c.Prefix6 = netip.Addr{}, netip.Prefix{}
	}
	return c, nil
}

// with sets the address p on c in its family's fields.
func with(c Choice, p netip.Prefix) Choice {
	if p.Addr().Is6() {
		c.Addr6, c.Prefix6 = p.Addr(), p
	} else {
		c.Addr, c.Prefix = p.Addr(), p
	}
	return c
}

// wanted reports whether spec needs addresses of a's family.
func (s Spec) wanted(a netip.Addr) bool {
	if a.Is6() {
		return s.IPv6
	}
	return s.wants4()
}

func selectByIface(ifaces []Iface, spec Spec) (Choice, error) {
	var problems []string
	for _, w := range spec.Ifaces {
		if ip, err := netip.ParseAddr(w); err == nil {
			ip = ip.Unmap()
			if !spec.wanted(ip) {
				problems = append(problems, fmt.Sprintf("%s: the network config does not enable this address family", w))
				continue
			}
			ifc, p, ok := byAddr(ifaces, ip)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: no interface has this address", w))
				continue
			}
			c, err := fill(with(Choice{Iface: ifc}, p), spec)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			c.Reason = fmt.Sprintf("--iface=%s is an address of %s", w, c.Iface.Name)
			return c, nil
		}
		ifc, ok := byName(ifaces, w)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no such interface", w))
			continue
		}
		c, err := fill(Choice{Iface: ifc}, spec)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		c.Reason = fmt.Sprintf("--iface=%s", w)
		return c, nil
	}
	return Choice{}, fmt.Errorf("--iface %s: %s", strings.Join(spec.Ifaces, ","), strings.Join(problems, "; "))
}

func selectByRegex(ifaces []Iface, spec Spec) (Choice, error) {
	for _, p := range spec.IfaceRegex {
		re, err := regexp.Compile(p)
		if err != nil {
			return Choice{}, fmt.Errorf("--iface-regex %q: %w", p, err)
		}
		if c, ok := regexOnAddrs(ifaces, re, spec); ok {
			c.Reason = fmt.Sprintf("--iface-regex=%s matched address %s", p, c.matched())
			return c, nil
		}
		for _, ifc := range ifaces {
			if re.MatchString(ifc.Name) {
				if c, err := fill(Choice{Iface: ifc}, spec); err == nil {
					c.Reason = fmt.Sprintf("--iface-regex=%s matched interface name %s", p, ifc.Name)
					return c, nil
				}
			}
		}
	}
	return Choice{}, fmt.Errorf("--iface-regex %s: no interface or address with a global %s address matches",
		strings.Join(spec.IfaceRegex, ","), spec.familyWords())
}

// regexOnAddrs finds the first interface with a global address of a
// needed family matching re (IPv4 looked at first); the other family
// prefers a matching address too, else the interface's first.
func regexOnAddrs(ifaces []Iface, re *regexp.Regexp, spec Spec) (Choice, bool) {
	for _, v6 := range []bool{false, true} {
		if (v6 && !spec.IPv6) || (!v6 && !spec.wants4()) {
			continue
		}
		for _, ifc := range ifaces {
			p, ok := matchingGlobal(ifc, re, v6)
			if !ok {
				continue
			}
			c := with(Choice{Iface: ifc}, p)
			if q, ok := matchingGlobal(ifc, re, !v6); ok && spec.wanted(q.Addr()) {
				c = with(c, q)
			}
			if c, err := fill(c, spec); err == nil {
				return c, true
			}
		}
	}
	return Choice{}, false
}

// matched is the address a regex matched, for the reason: IPv4 first.
func (c Choice) matched() netip.Addr {
	if c.Addr.IsValid() {
		return c.Addr
	}
	return c.Addr6
}

func matchingGlobal(ifc Iface, re *regexp.Regexp, v6 bool) (netip.Prefix, bool) {
	for _, a := range ifc.Addrs {
		if isGlobalUnicast(a.Addr(), v6) && re.MatchString(a.Addr().String()) {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

func (s Spec) familyWords() string {
	switch {
	case s.IPv6 && s.wants4():
		return "IPv4 and IPv6"
	case s.IPv6:
		return "IPv6"
	default:
		return "IPv4"
	}
}

func selectCanReach(h Host, ifaces []Iface, spec Spec) (Choice, error) {
	dst := spec.IfaceCanReach.Unmap()
	if !spec.wanted(dst) {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: the network config does not enable this address family", dst)
	}
	idx, src, err := h.RouteTo(dst)
	if err != nil {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: route lookup: %w", dst, err)
	}
	ifc, ok := byIndex(ifaces, idx)
	if !ok {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: route uses unknown interface index %d", dst, idx)
	}
	c := Choice{Iface: ifc}
	reason := fmt.Sprintf("--iface-can-reach=%s routes via %s", dst, ifc.Name)
	for _, a := range ifc.Addrs {
		if a.Addr() == src.Unmap() {
			c = with(c, a)
			reason += " from " + src.String()
			break
		}
	}
	c, err = fill(c, spec)
	if err != nil {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: %w", dst, err)
	}
	c.Reason = reason
	return c, nil
}

// selectDefaultRoute takes the IPv4 default route's interface, or the
// IPv6 one when IPv4 is off.
func selectDefaultRoute(h Host, ifaces []Iface, spec Spec) (Choice, error) {
	v6 := !spec.wants4()
	idx, err := h.DefaultRouteIndex(v6)
	if err != nil {
		return Choice{}, fmt.Errorf("no --iface given and no default route to pick an interface from (set --iface): %w", err)
	}
	ifc, ok := byIndex(ifaces, idx)
	if !ok {
		return Choice{}, fmt.Errorf("default route uses unknown interface index %d", idx)
	}
	c, err := fill(Choice{Iface: ifc}, spec)
	if err != nil {
		return Choice{}, err
	}
	route := "default route"
	if v6 {
		route = "IPv6 default route"
	}
	c.Reason = fmt.Sprintf("%s is via %s (no --iface given)", route, ifc.Name)
	return c, nil
}

func firstGlobal(ifc Iface, v6 bool) (netip.Prefix, bool) {
	for _, a := range ifc.Addrs {
		if isGlobalUnicast(a.Addr(), v6) {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

func byAddr(ifaces []Iface, ip netip.Addr) (Iface, netip.Prefix, bool) {
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if a.Addr() == ip {
				return ifc, a, true
			}
		}
	}
	return Iface{}, netip.Prefix{}, false
}

func byName(ifaces []Iface, name string) (Iface, bool) {
	for _, ifc := range ifaces {
		if ifc.Name == name {
			return ifc, true
		}
	}
	return Iface{}, false
}

func byIndex(ifaces []Iface, idx int) (Iface, bool) {
	for _, ifc := range ifaces {
		if ifc.Index == idx {
			return ifc, true
		}
	}
	return Iface{}, false
}

// isGlobalUnicast: a global unicast address of the family (IPv6 unique
// local addresses count, link-local ones do not).
func isGlobalUnicast(ip netip.Addr, v6 bool) bool {
	if v6 {
		return ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast()
	}
	return ip.Is4() && ip.IsGlobalUnicast()
}

// ErrNoDefaultRoute is returned by a Host without a default route of the
// family asked for.
var ErrNoDefaultRoute = errors.New("no default route")
