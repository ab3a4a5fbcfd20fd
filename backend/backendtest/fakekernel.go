// Package backendtest provides FakeKernel, a stateful stand-in for the
// netlink handle the backend reconciler uses (backend.Kernel). It behaves
// like the kernel where the reconciler can tell: neighbours keyed by
// (ifindex, IP), VXLAN FDB entries keyed by (ifindex, MAC) with one or more
// remote destinations, routes keyed by (table, dst, priority); ENOENT or
// ESRCH when deleting what is not there, replace semantics for NeighSet and
// RouteReplace, ENODEV for a missing link. Failures can be injected per
// operation and key, and every write is counted, so tests can assert
// "zero writes" and "retried after ENOBUFS".
//
// The slices inside returned dumps (IP, HardwareAddr, Dst, Gw) are shared
// with the fake's state: callers must not modify them. Everything passed
// in is copied.
package backendtest

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

type neighKey struct {
	link int
	ip   netip.Addr
}

type fdbKey struct {
	link int
	mac  [6]byte
}

type fdbRemote struct {
	dst   netip.Addr
	state int
	flags int
	vni   int
	ip    net.IP // dst as returned in dumps
}

type fdbEntry struct {
	mac     net.HardwareAddr
	remotes []fdbRemote
}

type routeKey struct {
	table    int
	dst      netip.Prefix
	priority int
}

type connected struct {
	prefix netip.Prefix
	link   int
}

// FakeKernel is safe for concurrent use. The zero value is not usable:
// call New.
type FakeKernel struct {
	mu     sync.Mutex
	links  map[int]netlink.Link
	names  map[string]int
	next   int
	neighs map[neighKey]netlink.Neigh
	fdb    map[fdbKey]*fdbEntry
	routes map[routeKey]netlink.Route

	connected  []connected
	defaultGw  netip.Addr
	defaultDev int

	faults []fault
	counts map[Op]int
	// events is the notification queue (events.go); nil until
	// EnableEvents.
	events *eventQueue
}

// New returns an empty fake kernel with a loopback link at index 1.
func New() *FakeKernel {
	k := &FakeKernel{
		links:  map[int]netlink.Link{},
		names:  map[string]int{},
		next:   1,
		neighs: map[neighKey]netlink.Neigh{},
		fdb:    map[fdbKey]*fdbEntry{},
		routes: map[routeKey]netlink.Route{},
		counts: map[Op]int{},
	}
	k.AddLink(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo"}})
	return k
}

// AddLink adds a link (its Attrs().Index is assigned when 0) and returns
// its index.
func (k *FakeKernel) AddLink(link netlink.Link) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	attrs := link.Attrs()
	if attrs.Index == 0 {
		attrs.Index = k.next
	}
	if attrs.Index >= k.next {
		k.next = attrs.Index + 1
	}
	k.links[attrs.Index] = link
	k.names[attrs.Name] = attrs.Index
	k.notifyLink(unix.RTM_NEWLINK, attrs.Index)
	return attrs.Index
}

// DeleteLink removes a link and, like the kernel, every neighbour, FDB
// entry and route that uses it. Unknown names are ignored.
func (k *FakeKernel) DeleteLink(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx, ok := k.names[name]
	if !ok {
		return
	}
	delete(k.names, name)
	delete(k.links, idx)
	k.notifyLink(unix.RTM_DELLINK, idx)
	for key, n := range k.neighs {
		if key.link == idx {
			delete(k.neighs, key)
			k.notifyNeigh(unix.RTM_DELNEIGH, n)
		}
	}
	for key, e := range k.fdb {
		if key.link == idx {
			delete(k.fdb, key)
			for _, r := range e.remotes {
				k.notifyFDB(unix.RTM_DELNEIGH, idx, e.mac, r)
			}
		}
	}
	for key, r := range k.routes {
		if r.LinkIndex == idx {
			delete(k.routes, key)
		}
	}
}

// AddConnected makes RouteGet answer "directly reachable via link" (one
// route, no gateway) for addresses inside prefix.
func (k *FakeKernel) AddConnected(prefix netip.Prefix, link int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.connected = append(k.connected, connected{prefix: prefix.Masked(), link: link})
}

// SetDefaultGateway makes RouteGet answer "via gw" for addresses that are
// not connected. Without it such lookups fail with ENETUNREACH.
func (k *FakeKernel) SetDefaultGateway(gw netip.Addr, link int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.defaultGw, k.defaultDev = gw, link
}

// LinkByName implements backend.Kernel. A missing link yields unix.ENODEV
// (the real handle wraps it in netlink.LinkNotFoundError, whose error field
// cannot be set outside that package).
func (k *FakeKernel) LinkByName(name string) (netlink.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.check(OpLinkGet, name); err != nil {
		return nil, err
	}
	idx, ok := k.names[name]
	if !ok {
		return nil, unix.ENODEV
	}
	return k.links[idx], nil
}

// LinkByIndex implements backend.Kernel.
func (k *FakeKernel) LinkByIndex(index int) (netlink.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.check(OpLinkGet, ""); err != nil {
		return nil, err
	}
	link, ok := k.links[index]
	if !ok {
		return nil, unix.ENODEV
	}
	return link, nil
}

// RouteGet implements backend.Kernel from AddConnected and
// SetDefaultGateway.
func (k *FakeKernel) RouteGet(destination net.IP) ([]netlink.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts[OpRouteGet]++
	if err := k.check(OpRouteGet, destination.String()); err != nil {
		return nil, err
	}
	addr := addrOf(destination)
	dst := &net.IPNet{IP: destination, Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}
	for _, c := range k.connected {
		if c.prefix.Contains(addr) {
			return []netlink.Route{{Dst: dst, LinkIndex: c.link, Table: unix.RT_TABLE_MAIN}}, nil
		}
	}
	if !k.defaultGw.IsValid() {
		return nil, unix.ENETUNREACH
	}
	return []netlink.Route{{Dst: dst, Gw: k.defaultGw.AsSlice(), LinkIndex: k.defaultDev, Table: unix.RT_TABLE_MAIN}}, nil
}

func (k *FakeKernel) hasLink(index int) bool {
	_, ok := k.links[index]
	return ok
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func macKey(mac net.HardwareAddr) ([6]byte, bool) {
	var k [6]byte
	if len(mac) != 6 {
		return k, false
	}
	copy(k[:], mac)
	return k, true
}

func cloneIP(ip net.IP) net.IP {
	if ip == nil {
		return nil
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return append(net.IP(nil), ip...)
}
