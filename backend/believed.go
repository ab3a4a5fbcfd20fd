package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// believedNeigh is a neighbour on our device as the kernel reported it.
type believedNeigh struct {
	mac   [6]byte // zero when the entry has no link-layer address
	state uint16
}

// believedFDB is an FDB entry on our device. A VXLAN FDB entry can hold
// several remote destinations (`bridge fdb append`); all but the first
// are in extra, allocated only when they exist. 32 bytes: the idle full
// pass at 100,000 peers is bound by cache misses in this map, and its
// size is what decides how many miss (it was 64 with a netip.Addr and a
// slice in place).
type believedFDB struct {
	dst   addr16
	vni   uint32
	state uint16
	flags uint8
	extra *fdbRemotes
}

// fdbRemotes are the destinations of an FDB entry after its first. Never
// changed once made: a believedFDB is copied, so a change makes a new one.
type fdbRemotes struct{ dsts []netip.Addr }

// newBelievedFDB is an entry with one destination.
func newBelievedFDB(dst netip.Addr, state uint16, flags uint8, vni uint32) believedFDB {
	return believedFDB{dst: addr16Of(dst), state: state, flags: flags, vni: vni}
}

// first is the entry's first destination.
func (b believedFDB) first() netip.Addr { return b.dst.addr() }

// others are its other destinations.
func (b believedFDB) others() []netip.Addr {
	if b.extra == nil {
		return nil
	}
	return b.extra.dsts
}

// withOthers is the entry with others as its other destinations.
func (b believedFDB) withOthers(others []netip.Addr) believedFDB {
	b.extra = nil
	if len(others) > 0 {
		b.extra = &fdbRemotes{dsts: others}
	}
	return b
}

// appended is the entry with one more destination.
func (b believedFDB) appended(dst netip.Addr) believedFDB {
	return b.withOthers(append(slices.Clip(b.others()), dst))
}

// addr16 is an address as the route and nexthop tables hold it: 16 bytes
// and no pointer (a netip.Addr is 24 with its zone handle, and the GC
// scans every map that holds pointers). IPv4 is held IPv4-mapped; the
// zero value is no address (never one of ours: "::" is no gateway and no
// peer subnet).
type addr16 [16]byte

func addr16Of(a netip.Addr) addr16 {
	if !a.IsValid() {
		return addr16{}
	}
	return a.As16()
}

// addr is the address again (invalid for the zero value).
func (a addr16) addr() netip.Addr {
	if a == (addr16{}) {
		return netip.Addr{}
	}
	return netip.AddrFrom16(a).Unmap()
}

// routeKey identifies a route in the main table the way the kernel does
// (the table is always main for our routes): destination and metric. It
// is 24 bytes, pointer-free, where a netip.Prefix and an int were 40.
type routeKey struct {
	addr   addr16
	metric uint32
	bits   uint8
}

// routeKeyOf is the key of the route to dst at metric priority.
func routeKeyOf(dst netip.Prefix, priority int) routeKey {
	return routeKey{addr: addr16Of(dst.Addr()), bits: uint8(dst.Bits()), metric: uint32(priority)}
}

// dst is the route's destination.
func (k routeKey) dst() netip.Prefix {
	a := k.addr.addr()
	if !a.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, int(k.bits))
}

// priority is the route's metric.
func (k routeKey) priority() int { return int(k.metric) }

// believedRoute is one of our routes as the kernel reported it; scope is kept
// because a delete must repeat it to match. 28 bytes, pointer-free.
type believedRoute struct {
	gw   addr16
	link int32
	// nhid: the route points at this nexthop object (lean dumps only).
	nhid   uint32
	onlink bool
	scope  netlink.Scope
}

// believedState is what the reconciler believes the kernel holds of ours:
// loaded from a dump, then updated by every successful write.
type believedState struct {
	neigh   map[addr16]believedNeigh
	fdb     map[[6]byte]believedFDB
	route   map[routeKey]believedRoute
	nexthop map[uint32]believedNexthop
}

func newBelievedState() *believedState {
	return &believedState{
		neigh:   map[addr16]believedNeigh{},
		fdb:     map[[6]byte]believedFDB{},
		route:   map[routeKey]believedRoute{},
		nexthop: map[uint32]believedNexthop{},
	}
}

// ownership says which kernel entries are ours: every unicast neighbour
// (of our family) and permanent unicast FDB entry on our device, and the main-table routes
// inside the cluster network that are on our device, or on the external
// link with a gateway (DirectRouting routes). Routes to the network itself,
// to our own subnet, and kernel-made routes are never ours.
type ownership struct {
	family    int
	network   netip.Prefix
	ownSubnet netip.Prefix
	link      int
	extLink   int
	// nexthops: the kernel has nexthop objects; those on our device with
	// an id in our range (ownNexthopID) are ours, and are dumped.
	nexthops bool
}

// ownNeigh: a neighbour on our device is ours when it is of our family
// and unicast. The kernel keeps multicast ones (ff02::16 and the
// solicited-node groups of the IPv6 device's own addresses, for MLD) that
// no peer needs and that would come back after every deletion.
func (o ownership) ownNeigh(ip netip.Addr) bool {
	return ip.IsValid() && ip.Is4() == (o.family == unix.AF_INET) && !ip.IsMulticast()
}

func (o ownership) route(r *netlink.Route) (routeKey, believedRoute, bool) {
	if r.Dst == nil {
		return routeKey{}, believedRoute{}, false
	}
	return o.routeOf(routeFields{table: r.Table, protocol: int(r.Protocol), dst: prefixFromIPNet(r.Dst),
		gw: addrFromIP(r.Gw), link: r.LinkIndex, flags: r.Flags, scope: r.Scope, priority: r.Priority})
}

// routeFields are the parts of a route that ownership looks at, decoded
// either from a netlink.Route or straight from a dump message.
type routeFields struct {
	table, protocol int
	dst             netip.Prefix
	gw              netip.Addr
	link, flags     int
	scope           netlink.Scope
	priority        int
	nhid            uint32
}

func (o ownership) routeOf(r routeFields) (routeKey, believedRoute, bool) {
	dst := r.dst
	if r.table != unix.RT_TABLE_MAIN || !dst.IsValid() || r.protocol == unix.RTPROT_KERNEL {
		return routeKey{}, believedRoute{}, false
	}
	if dst.Bits() <= o.network.Bits() || !o.network.Contains(dst.Addr()) || dst == o.ownSubnet {
		return routeKey{}, believedRoute{}, false
	}
	// A route through one of our nexthops is on our device even when the
	// kernel leaves the nexthop's device out of the dump
	// (net.ipv4.nexthop_compat_mode=0).
	onDevice := r.link == o.link || (r.link == 0 && ownNexthopID(r.nhid))
	direct := o.extLink != 0 && r.link == o.extLink && r.gw.IsValid()
	if !onDevice && !direct {
		return routeKey{}, believedRoute{}, false
	}
	believed := believedRoute{link: int32(r.link), gw: addr16Of(r.gw), onlink: r.flags&int(netlink.FLAG_ONLINK) != 0, scope: r.scope, nhid: r.nhid}
	priority := r.priority
	if priority == ip6DefaultMetric && dst.Addr().Is6() {
		// The kernel gives an IPv6 route written without a metric 1024;
		// we write without one, as for IPv4, so 1024 reads as ours (0).
		priority = 0
	}
	return routeKeyOf(dst, priority), believed, true
}

// ip6DefaultMetric is the metric the kernel gives an IPv6 route added
// without one (IP6_RT_PRIO_USER).
const ip6DefaultMetric = 1024

// maxDumpAttempts bounds the retries of a dump the kernel interrupted
// (the table changed while it was being read).
const maxDumpAttempts = 5

// dumpError is a dump that failed, with the kind of entry it was for.
type dumpError struct {
	kind entryKind
	err  error
}

func (e *dumpError) Error() string { return e.err.Error() }
func (e *dumpError) Unwrap() error { return e.err }

// dumpRetrying runs dump until it completes without
// netlink.ErrDumpInterrupted; partial results are never returned.
func dumpRetrying[T any](kind entryKind, dump func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		list, err := dump()
		switch {
		case err == nil:
			return list, nil
		case !errors.Is(err, netlink.ErrDumpInterrupted):
			return nil, &dumpError{kind: kind, err: fmt.Errorf("dump %s entries: %w", kind, err)}
		case attempt == maxDumpAttempts:
			return nil, &dumpError{kind: kind, err: fmt.Errorf("dump %s entries: interrupted %d times in a row: %w", kind, attempt, err)}
		}
	}
}

// load replaces the believed state with a fresh dump of the kernel. When
// k is a leanDumper the maps are filled as the dumps are read, and partial
// is true after a failure (the state then reflects no kernel); otherwise
// they are untouched on failure.
func (b *believedState) load(k Kernel, o ownership) (partial bool, err error) {
	if ld, ok := k.(leanDumper); ok {
		err := ld.dumpBelieved(b, o)
		return err != nil, err
	}
	return false, b.loadLibrary(k, o)
}

// loadLibrary dumps through the Kernel's library calls.
func (b *believedState) loadLibrary(k Kernel, o ownership) error {
	neighs, err := dumpRetrying(kindNeigh, func() ([]netlink.Neigh, error) { return k.NeighList(o.link, o.family) })
	if err != nil {
		return err
	}
	fdb, err := dumpRetrying(kindFDB, func() ([]netlink.Neigh, error) { return k.NeighList(o.link, unix.AF_BRIDGE) })
	if err != nil {
		return err
	}
	routes, err := dumpRetrying(kindRoute, func() ([]netlink.Route, error) {
		return k.RouteListFiltered(o.family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return err
	}
	b.loadNeighs(neighs, o)
	b.loadFDB(fdb, o.link)
	b.loadRoutes(routes, o)
	return nil
}

func (b *believedState) loadNeighs(list []netlink.Neigh, o ownership) {
	clear(b.neigh)
	for i := range list {
		n := &list[i]
		ip := addrFromIP(n.IP)
		if n.LinkIndex != o.link || !o.ownNeigh(ip) {
			continue
		}
		var mac [6]byte
		if len(n.HardwareAddr) == len(mac) {
			copy(mac[:], n.HardwareAddr)
		}
		b.neigh[addr16Of(ip)] = believedNeigh{mac: mac, state: uint16(n.State)}
	}
}

// loadFDB keeps the permanent unicast entries: learned ones (a device
// configured with learning) are the kernel's and age out by themselves.
func (b *believedState) loadFDB(list []netlink.Neigh, link int) {
	clear(b.fdb)
	for i := range list {
		n := &list[i]
		mac, ok := unicastMAC(n.HardwareAddr)
		if n.LinkIndex != link || !ok || n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		dst := addrFromIP(n.IP)
		if believed, dup := b.fdb[mac]; dup {
			b.fdb[mac] = believed.appended(dst)
			continue
		}
		b.fdb[mac] = newBelievedFDB(dst, uint16(n.State), uint8(n.Flags), uint32(n.VNI))
	}
}

func (b *believedState) loadRoutes(list []netlink.Route, o ownership) {
	clear(b.route)
	for i := range list {
		if key, believed, ours := o.route(&list[i]); ours {
			if _, dup := b.route[key]; !dup {
				b.route[key] = believed
			}
		}
	}
}

// unicastMAC returns the 6-byte MAC as a key. The all-zero default
// destination and multicast entries are not peers' and never ours.
func unicastMAC(hw net.HardwareAddr) ([6]byte, bool) {
	var mac [6]byte
	if len(hw) != len(mac) || hw[0]&1 == 1 {
		return mac, false
	}
	copy(mac[:], hw)
	return mac, mac != [6]byte{}
}

func addrFromIP(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func prefixFromIPNet(n *net.IPNet) netip.Prefix {
	a := addrFromIP(n.IP)
	ones, bits := n.Mask.Size()
	if !a.IsValid() || bits == 0 {
		return netip.Prefix{}
	}
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones).Masked()
}
