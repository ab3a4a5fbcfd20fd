package backendtest

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteListFiltered implements backend.Kernel with the handle's table
// semantics: only the main table unless RT_FILTER_TABLE is set (then
// filter.Table, or every table when it is 0). RT_FILTER_OIF is honoured;
// other filter bits are ignored. An injected netlink.ErrDumpInterrupted
// returns no routes with the error, as the real handle does.
func (k *FakeKernel) RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts[OpRouteList]++
	if err := k.check(OpRouteList, ""); err != nil {
		return nil, err
	}
	out := make([]netlink.Route, 0, len(k.routes))
	for _, r := range k.routes {
		if family != 0 && r.Family != family {
			continue
		}
		if !tableSelected(r.Table, filter, filterMask) {
			continue
		}
		if filter != nil && filterMask&netlink.RT_FILTER_OIF != 0 && r.LinkIndex != filter.LinkIndex {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func tableSelected(table int, filter *netlink.Route, mask uint64) bool {
	if filter == nil || mask&netlink.RT_FILTER_TABLE == 0 {
		return table == unix.RT_TABLE_MAIN
	}
	return filter.Table == unix.RT_TABLE_UNSPEC || filter.Table == table
}

// RouteReplace implements backend.Kernel (`ip route replace`): the route
// with the same (table, dst, priority) is replaced or a new one added.
// Unset table, protocol and type default to main, boot and unicast.
func (k *FakeKernel) RouteReplace(route *netlink.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts[OpRouteReplace]++
	key, err := routeKeyOf(route)
	if err != nil {
		return err
	}
	if err := k.fault(OpRouteReplace, key.dst); err != nil {
		return err
	}
	if !k.hasLink(route.LinkIndex) {
		return unix.ENODEV
	}
	stored := *route
	stored.Dst = &net.IPNet{IP: cloneIP(route.Dst.IP), Mask: append(net.IPMask(nil), route.Dst.Mask...)}
	stored.Gw = cloneIP(route.Gw)
	stored.Table = key.table
	stored.Family = familyOfAddr(key.dst.Addr())
	if stored.Protocol == 0 {
		stored.Protocol = unix.RTPROT_BOOT
	}
	if stored.Type == 0 {
		stored.Type = unix.RTN_UNICAST
	}
	k.routes[key] = stored
	k.notifyRoute(unix.RTM_NEWROUTE, stored)
	return nil
}

// RouteDel implements backend.Kernel. Like the kernel, the request's
// scope must match, and a link or gateway given must match: otherwise
// ESRCH.
func (k *FakeKernel) RouteDel(route *netlink.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts[OpRouteDel]++
	key, err := routeKeyOf(route)
	if err != nil {
		return err
	}
	if err := k.fault(OpRouteDel, key.dst); err != nil {
		return err
	}
	stored, ok := k.routes[key]
	switch {
	case !ok,
		route.LinkIndex != 0 && route.LinkIndex != stored.LinkIndex,
		route.Gw != nil && !route.Gw.Equal(stored.Gw),
		route.Scope != stored.Scope:
		return unix.ESRCH
	}
	delete(k.routes, key)
	k.notifyRoute(unix.RTM_DELROUTE, stored)
	return nil
}

func routeKeyOf(route *netlink.Route) (routeKey, error) {
	if route.Dst == nil {
		return routeKey{}, errors.New("either Dst.IP, Src.IP or Gw must be set")
	}
	addr := addrOf(route.Dst.IP)
	bits, _ := route.Dst.Mask.Size()
	if !addr.IsValid() {
		return routeKey{}, unix.EINVAL
	}
	table := route.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	return routeKey{table: table, dst: netip.PrefixFrom(addr, bits).Masked(), priority: route.Priority}, nil
}

func familyOfAddr(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
