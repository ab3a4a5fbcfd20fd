package underlay

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkHost reads interfaces and routes through a netlink handle.
type NetlinkHost struct{ H *netlink.Handle }

// Interfaces lists links with their IPv4 and IPv6 addresses.
func (n NetlinkHost) Interfaces() ([]Iface, error) {
	links, err := n.H.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Iface, 0, len(links))
	for _, l := range links {
		attrs := l.Attrs()
		addrs, err := n.H.AddrList(l, unix.AF_UNSPEC)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", attrs.Name, err)
		}
		ifc := Iface{Name: attrs.Name, Index: attrs.Index, MTU: attrs.MTU, Up: attrs.Flags&net.FlagUp != 0}
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok {
				ifc.Addrs = append(ifc.Addrs, p)
			}
		}
		out = append(out, ifc)
	}
	return out, nil
}

// DefaultRouteIndex finds the main table's default route of one family.
func (n NetlinkHost) DefaultRouteIndex(ipv6 bool) (int, error) {
	family := unix.AF_INET
	if ipv6 {
		family = unix.AF_INET6
	}
	routes, err := n.H.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if (r.Dst == nil || isZeroNet(r.Dst)) && r.LinkIndex > 0 {
			return r.LinkIndex, nil
		}
	}
	return 0, ErrNoDefaultRoute
}

// RouteTo asks the kernel which interface and source reach dst.
func (n NetlinkHost) RouteTo(dst netip.Addr) (int, netip.Addr, error) {
	routes, err := n.H.RouteGet(dst.AsSlice())
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if len(routes) == 0 {
		return 0, netip.Addr{}, fmt.Errorf("no route to %s", dst)
	}
	src, _ := netip.AddrFromSlice(routes[0].Src)
	return routes[0].LinkIndex, src.Unmap(), nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func isZeroNet(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}
