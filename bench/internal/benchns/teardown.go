package benchns

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// flushTimeout bounds the nexthop flush.
const flushTimeout = 2 * time.Minute

// FlushRoutesThenNexthops deletes every main-table route on flannel.1 in
// namespace, then every nexthop object, before the namespace is deleted.
// Deleting a namespace (or a device) whose routes still use nexthop
// objects makes the kernel walk the whole FIB once per nexthop while
// holding the rtnl lock: minutes at 100,000, during which every netlink
// write on the machine waits. Routes first, then nexthops, takes about a
// second at 50,000 (docs/performance.md). `ip route flush` cannot do the
// first step: it deletes with the gateway and device of the dump, which
// the kernel rejects for a route through a nexthop (EINVAL); a delete by
// destination and metric alone matches it. Errors are ignored: this is
// best-effort cleanup, and a kernel without nexthop objects has none.
func FlushRoutesThenNexthops(namespace string) {
	if h, err := netnsutil.Handle(namespace); err == nil {
		deleteDeviceRoutes(h, "flannel.1")
		h.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	_, _ = netnsutil.Exec(ctx, namespace, "ip", "nexthop", "flush")
}

func deleteDeviceRoutes(h *netlink.Handle, dev string) {
	link, err := h.LinkByName(dev)
	if err != nil {
		return
	}
	for range 3 { // a dump interrupted by concurrent changes is repeated
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN, LinkIndex: link.Attrs().Index},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
		if err == nil && len(routes) == 0 {
			return
		}
		for i := range routes {
			r := &routes[i]
			if r.Dst == nil || r.Protocol == unix.RTPROT_KERNEL {
				continue
			}
			_ = h.RouteDel(&netlink.Route{Dst: r.Dst, Table: r.Table, Priority: r.Priority})
		}
	}
}
