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
	// Addrs are its IPv4 addresses with their prefix lengths, in kernel order.
	Addrs []netip.Prefix
}

// Host is a snapshot of what the selection needs from the kernel.
type Host interface {
	Interfaces() ([]Iface, error)
	// DefaultRouteIndex is the ifindex of the IPv4 default route's device.
	DefaultRouteIndex() (int, error)
	// RouteTo returns the ifindex and source address the kernel would use
	// to reach dst (ip route get).
	RouteTo(dst netip.Addr) (int, netip.Addr, error)
}

// Spec is what the operator asked for.
type Spec struct {
	Ifaces        []string // --iface: names or IPs, first that matches wins
	IfaceRegex    []string // --iface-regex: matched against IPs, then names
	IfaceCanReach netip.Addr
}

// Choice is the selected interface and bind address, and why.
type Choice struct {
	Iface  Iface
	Addr   netip.Addr   // the address the VXLAN device binds (local)
	Prefix netip.Prefix // Addr with its prefix length: the node's underlay subnet
	Reason string
}

// Select applies flannel's order: --iface, then --iface-regex, then
// --iface-can-reach, else the default route's interface.
func Select(h Host, spec Spec) (Choice, error) {
	ifaces, err := h.Interfaces()
	if err != nil {
		return Choice{}, fmt.Errorf("list interfaces: %w", err)
	}
	switch {
	case len(spec.Ifaces) > 0:
		return selectByIface(ifaces, spec.Ifaces)
	case len(spec.IfaceRegex) > 0:
		return selectByRegex(ifaces, spec.IfaceRegex)
	case spec.IfaceCanReach.IsValid():
		return selectCanReach(h, ifaces, spec.IfaceCanReach)
	default:
		return selectDefaultRoute(h, ifaces)
	}
}

func selectByIface(ifaces []Iface, wanted []string) (Choice, error) {
	var problems []string
	for _, w := range wanted {
		if ip, err := netip.ParseAddr(w); err == nil {
			if c, ok := byAddr(ifaces, ip); ok {
				c.Reason = fmt.Sprintf("--iface=%s is an address of %s", w, c.Iface.Name)
				return c, nil
			}
			problems = append(problems, fmt.Sprintf("%s: no interface has this address", w))
			continue
		}
		ifc, ok := byName(ifaces, w)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no such interface", w))
			continue
		}
		c, err := firstAddr(ifc)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		c.Reason = fmt.Sprintf("--iface=%s", w)
		return c, nil
	}
	return Choice{}, fmt.Errorf("--iface %s: %s", strings.Join(wanted, ","), strings.Join(problems, "; "))
}

func selectByRegex(ifaces []Iface, patterns []string) (Choice, error) {
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return Choice{}, fmt.Errorf("--iface-regex %q: %w", p, err)
		}
		for _, ifc := range ifaces {
			for _, a := range ifc.Addrs {
				if isGlobalUnicast4(a.Addr()) && re.MatchString(a.Addr().String()) {
					return Choice{Iface: ifc, Addr: a.Addr(), Prefix: a,
						Reason: fmt.Sprintf("--iface-regex=%s matched address %s", p, a.Addr())}, nil
				}
			}
		}
		for _, ifc := range ifaces {
			if re.MatchString(ifc.Name) {
				if c, err := firstAddr(ifc); err == nil {
					c.Reason = fmt.Sprintf("--iface-regex=%s matched interface name %s", p, ifc.Name)
					return c, nil
				}
			}
		}
	}
	return Choice{}, fmt.Errorf("--iface-regex %s: no interface or address with a global IPv4 address matches", strings.Join(patterns, ","))
}

func selectCanReach(h Host, ifaces []Iface, dst netip.Addr) (Choice, error) {
	idx, src, err := h.RouteTo(dst)
	if err != nil {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: route lookup: %w", dst, err)
	}
	ifc, ok := byIndex(ifaces, idx)
	if !ok {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: route uses unknown interface index %d", dst, idx)
	}
	for _, a := range ifc.Addrs {
		if a.Addr() == src {
			return Choice{Iface: ifc, Addr: src, Prefix: a,
				Reason: fmt.Sprintf("--iface-can-reach=%s routes via %s from %s", dst, ifc.Name, src)}, nil
		}
	}
	c, err := firstAddr(ifc)
	if err != nil {
		return Choice{}, fmt.Errorf("--iface-can-reach=%s: %w", dst, err)
	}
	c.Reason = fmt.Sprintf("--iface-can-reach=%s routes via %s", dst, ifc.Name)
	return c, nil
}

func selectDefaultRoute(h Host, ifaces []Iface) (Choice, error) {
	idx, err := h.DefaultRouteIndex()
	if err != nil {
		return Choice{}, fmt.Errorf("no --iface given and no default route to pick an interface from (set --iface): %w", err)
	}
	ifc, ok := byIndex(ifaces, idx)
	if !ok {
		return Choice{}, fmt.Errorf("default route uses unknown interface index %d", idx)
	}
	c, err := firstAddr(ifc)
	if err != nil {
		return Choice{}, err
	}
	c.Reason = fmt.Sprintf("default route is via %s (no --iface given)", ifc.Name)
	return c, nil
}

func firstAddr(ifc Iface) (Choice, error) {
	for _, a := range ifc.Addrs {
		if isGlobalUnicast4(a.Addr()) {
			return Choice{Iface: ifc, Addr: a.Addr(), Prefix: a}, nil
		}
	}
	return Choice{}, fmt.Errorf("interface %s has no global unicast IPv4 address", ifc.Name)
}

func byAddr(ifaces []Iface, ip netip.Addr) (Choice, bool) {
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if a.Addr() == ip {
				return Choice{Iface: ifc, Addr: ip, Prefix: a}, true
			}
		}
	}
	return Choice{}, false
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

func isGlobalUnicast4(ip netip.Addr) bool {
	return ip.Is4() && ip.IsGlobalUnicast()
}

// ErrNoDefaultRoute is returned by a Host without an IPv4 default route.
var ErrNoDefaultRoute = errors.New("no IPv4 default route")
