package backend

import (
	"net"

	"github.com/vishvananda/netlink"
)

// Kernel is the reconciler's netlink seam: exactly the methods of
// *netlink.Handle (vishvananda/netlink v1.3.1) it calls, so a handle
// satisfies it without a wrapper. backendtest.FakeKernel is the stateful
// fake used by the unit tests.
//
// Dumps (NeighList, RouteListFiltered) may fail with
// netlink.ErrDumpInterrupted, NeighList together with partial results; the
// reconciler retries such dumps and never uses their partial results.
//
// A Kernel may also implement two optional, unexported interfaces, as
// NetlinkKernel does: leanDumper (full-pass dumps read straight into the
// believed state instead of NeighList/RouteListFiltered) and batchSender
// (a full pass's adds sent many to a datagram instead of one NeighSet or
// RouteReplace each). Without them the reconciler uses the methods below.
type Kernel interface {
	NeighList(linkIndex, family int) ([]netlink.Neigh, error)
	NeighSet(neigh *netlink.Neigh) error
	NeighDel(neigh *netlink.Neigh) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	// RouteGet decides DirectRouting: a peer whose underlay address is
	// reachable without a gateway is routed to directly.
	RouteGet(destination net.IP) ([]netlink.Route, error)
	// LinkByIndex and LinkByName check that our VXLAN device is still the
	// one we program.
	LinkByName(name string) (netlink.Link, error)
	LinkByIndex(index int) (netlink.Link, error)
}

var _ Kernel = (*netlink.Handle)(nil)
