package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeHandle is the part of *netlink.Handle the blackhole route needs.
type routeHandle interface {
	RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error)
	RouteAdd(route *netlink.Route) error
}

// ensureBlackholeRoute adds "blackhole <subnet>" to the main table unless a
// blackhole route for it is there (--ip-blackhole-route, as flanneld: for
// setups without the bridge plugin, packets to unused pod addresses of this
// node are dropped instead of following the default route). It reports
// whether it wrote.
func ensureBlackholeRoute(h routeHandle, subnet netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if subnet.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	dst := &net.IPNet{IP: subnet.Masked().Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), subnet.Addr().BitLen())}
	route := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Family: family}
	have, err := h.RouteListFiltered(family, route, netlink.RT_FILTER_DST|netlink.RT_FILTER_TYPE)
	if err != nil {
		return false, fmt.Errorf("list blackhole routes for %s: %w", subnet, err)
	}
	if len(have) > 0 {
		return false, nil
	}
	if err := h.RouteAdd(route); err != nil {
		return false, fmt.Errorf("add blackhole route %s: %w", subnet, err)
	}
	return true, nil
}

// runBlackholeRoute keeps the route in place every interval (flanneld uses
// --iptables-resync) until ctx ends; failures are logged when they start
// or change, and when they end.
func runBlackholeRoute(ctx context.Context, h routeHandle, subnet netip.Prefix, every time.Duration, log *slog.Logger) error {
	var last string
	for {
		wrote, err := ensureBlackholeRoute(h, subnet)
		switch {
		case err != nil && err.Error() != last:
			log.Warn("blackhole route not in place; retrying", "subnet", subnet, "every", every, "err", err)
			last = err.Error()
		case err == nil && wrote:
			log.Info("blackhole route added", "subnet", subnet)
			last = ""
		case err == nil:
			last = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
