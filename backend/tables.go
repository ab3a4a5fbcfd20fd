package backend

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// The three tables a VXLAN peer needs, as trackers: the neighbour of the
// peer subnet's address, the FDB entry of its VTEP MAC, the route to its
// subnet.
type (
	neighTable   = tracker[addr16, neighWant, believedNeigh]
	fdbTable     = tracker[[6]byte, fdbWant, believedFDB]
	routeTable   = tracker[routeKey, routeWant, believedRoute]
	nexthopTable = tracker[uint32, nexthopWant, believedNexthop]
)

// newTables makes the trackers over the desired and believed state.
func (r *Reconciler) newTables() {
	r.want.network = r.opts.Network
	r.neigh = newTracker[addr16, neighWant, believedNeigh](kindNeigh, neighView{r.want}, r.believed.neigh, neighOps{r})
	r.fdb = newTracker[[6]byte, fdbWant, believedFDB](kindFDB, fdbView{r.want}, r.believed.fdb, fdbOps{r})
	r.route = newTracker[routeKey, routeWant, believedRoute](kindRoute, routeView{r.want}, r.believed.route, routeOps{r})
	r.nexthop = newTracker[uint32, nexthopWant, believedNexthop](kindNexthop, nexthopView{r.want}, r.believed.nexthop, nexthopOps{r})
	r.want.dirty = dirtyKeys{neigh: &r.neigh.dirty, fdb: &r.fdb.dirty, route: &r.route.dirty, nexthop: &r.nexthop.dirty}
}

// neighView, fdbView and routeView are the desired views of the tables.
type (
	neighView struct{ d *desiredState }
	fdbView   struct{ d *desiredState }
	routeView struct{ d *desiredState }
)

func (v neighView) get(ip addr16) (neighWant, *peer, bool) {
	c, ok := v.d.neigh[ip]
	if !ok {
		return neighWant{}, nil, false
	}
	return neighWant{mac: c.owner.mac}, c.owner, true
}

func (v neighView) entries(yield func(addr16, neighWant, *peer) bool) {
	for ip, c := range v.d.neigh {
		if !yield(ip, neighWant{mac: c.owner.mac}, c.owner) {
			return
		}
	}
}

func (v fdbView) get(mac [6]byte) (fdbWant, *peer, bool) {
	c, ok := v.d.fdb[mac]
	if !ok {
		return fdbWant{}, nil, false
	}
	return fdbWant{dst: c.owner.dst}, c.owner, true
}

func (v fdbView) entries(yield func([6]byte, fdbWant, *peer) bool) {
	for mac, c := range v.d.fdb {
		if !yield(mac, fdbWant{dst: c.owner.dst}, c.owner) {
			return
		}
	}
}

// get wants a route only at metric 0: a route of ours with another metric
// is stale.
func (v routeView) get(k routeKey) (routeWant, *peer, bool) {
	if k.metric != 0 {
		return routeWant{}, nil, false
	}
	w, owner := v.d.route(k.dst())
	return w, owner, owner != nil
}

func (v routeView) entries(yield func(routeKey, routeWant, *peer) bool) {
	for dst, p := range v.d.peers {
		if !yield(routeKeyOf(dst, 0), p.routeWant(), p) {
			return
		}
	}
}

// neighOps: `ip neigh replace <ip> lladdr <mac> dev <dev> nud permanent`.
type neighOps struct{ r *Reconciler }

func (o neighOps) matches(b believedNeigh, w neighWant) bool {
	return b.mac == w.mac && b.state&netlink.NUD_PERMANENT != 0
}

func (o neighOps) written(w neighWant) believedNeigh {
	return believedNeigh{mac: w.mac, state: netlink.NUD_PERMANENT}
}

func (o neighOps) dirtyKey(ip addr16) addr16          { return ip }
func (o neighOps) batchable(believedNeigh, bool) bool { return true }
func (o neighOps) queue(b *nl.Batch, ip addr16, w neighWant) {
	b.AddNeigh(uint8(o.r.own.family), o.r.own.link, ip.addr(), w.mac)
}

func (o neighOps) prepare(*passStats, addr16, neighWant, believedNeigh, bool, bool) error {
	return nil
}

func (o neighOps) write(ip addr16, w neighWant) error {
	return o.r.k.NeighSet(o.r.scratch.neigh(o.r.own, ip.addr(), w.mac))
}

func (o neighOps) addError(ip addr16, w neighWant, err error) error {
	return fmt.Errorf("replace neighbour %s lladdr %s dev %s: %w", ip.addr(), macString(w.mac), o.r.opts.LinkName, err)
}

func (o neighOps) remove(st *passStats, ip addr16, b believedNeigh, drift bool) error {
	err := o.r.wrote(st, kindNeigh, opDel, drift, o.r.k.NeighDel(o.r.scratch.neighDel(o.r.own, ip.addr())))
	if err != nil {
		return o.delError(ip, b, err)
	}
	return nil
}

func (o neighOps) queueDel(b *nl.Batch, ip addr16, _ believedNeigh) bool {
	b.DelNeigh(uint8(o.r.own.family), o.r.own.link, ip.addr())
	return true
}

func (o neighOps) delError(ip addr16, _ believedNeigh, err error) error {
	return fmt.Errorf("delete neighbour %s dev %s: %w", ip.addr(), o.r.opts.LinkName, err)
}

// fdbOps: `bridge fdb replace <mac> dev <dev> dst <dst> self permanent`.
type fdbOps struct{ r *Reconciler }

func (o fdbOps) matches(b believedFDB, w fdbWant) bool {
	return b.dst == addr16Of(w.dst) && b.state&netlink.NUD_PERMANENT != 0 &&
		b.flags&netlink.NTF_SELF != 0 && b.vni == 0 && b.extra == nil
}

func (o fdbOps) written(w fdbWant) believedFDB {
	return newBelievedFDB(w.dst, netlink.NUD_PERMANENT, netlink.NTF_SELF, 0)
}

func (o fdbOps) dirtyKey(mac [6]byte) [6]byte { return mac }

// batchable: an entry with several destinations needs deletes first.
func (o fdbOps) batchable(b believedFDB, present bool) bool { return !present || b.extra == nil }

func (o fdbOps) queue(b *nl.Batch, mac [6]byte, w fdbWant) { b.AddFDB(o.r.own.link, mac, w.dst) }

// prepare: a replace rewrites only the first destination, or nothing
// when ours is among the others: remove the wrong ones first.
func (o fdbOps) prepare(st *passStats, mac [6]byte, w fdbWant, b believedFDB, present, drift bool) error {
	if !present || b.extra == nil {
		return nil
	}
	return o.deleteRemotes(st, mac, b, w.dst, drift)
}

func (o fdbOps) write(mac [6]byte, w fdbWant) error {
	return o.r.k.NeighSet(o.r.scratch.fdb(o.r.own.link, mac, w.dst))
}

func (o fdbOps) addError(mac [6]byte, w fdbWant, err error) error {
	return fmt.Errorf("replace fdb %s dst %s dev %s: %w", macString(mac), w.dst, o.r.opts.LinkName, err)
}

func (o fdbOps) remove(st *passStats, mac [6]byte, b believedFDB, drift bool) error {
	return o.deleteRemotes(st, mac, b, netip.Addr{}, drift)
}

// queueDel: an entry with several destinations takes one delete each.
func (o fdbOps) queueDel(batch *nl.Batch, mac [6]byte, b believedFDB) bool {
	if b.extra != nil {
		return false
	}
	batch.DelFDB(o.r.own.link, mac, b.first())
	return true
}

func (o fdbOps) delError(mac [6]byte, b believedFDB, err error) error {
	return fmt.Errorf("delete fdb %s dst %s dev %s: %w", macString(mac), b.first(), o.r.opts.LinkName, err)
}

// deleteRemotes deletes every destination of the entry except keep. The
// destination must be given: the VXLAN driver rejects an FDB delete
// without one.
func (o fdbOps) deleteRemotes(st *passStats, mac [6]byte, b believedFDB, keep netip.Addr, drift bool) error {
	del := func(dst netip.Addr) error {
		if dst == keep {
			return nil
		}
		err := o.r.wrote(st, kindFDB, opDel, drift, o.r.k.NeighDel(o.r.scratch.fdb(o.r.own.link, mac, dst)))
		if err != nil {
			return fmt.Errorf("delete fdb %s dst %s dev %s: %w", macString(mac), dst, o.r.opts.LinkName, err)
		}
		return nil
	}
	if err := del(b.first()); err != nil {
		return err
	}
	for _, dst := range b.others() {
		if err := del(dst); err != nil {
			return err
		}
	}
	return nil
}

// routeOps: `<dst> via <gw> dev <dev> onlink`, or with DirectRouting
// `<dst> via <underlay address> dev <external link>`.
type routeOps struct{ r *Reconciler }

// link is the device the wanted route goes out of.
func (o routeOps) link(w routeWant) int {
	if w.direct {
		return o.r.opts.ExtLinkIndex
	}
	return o.r.own.link
}

func (o routeOps) matches(b believedRoute, w routeWant) bool {
	if b.nhid != w.nhid {
		return false
	}
	return w.nhid != 0 || (int(b.link) == o.link(w) && b.gw == addr16Of(w.gw) && b.onlink == !w.direct)
}

func (o routeOps) written(w routeWant) believedRoute {
	if w.nhid != 0 {
		return believedRoute{link: int32(o.r.own.link), gw: addr16Of(w.gw), onlink: true, scope: netlink.SCOPE_UNIVERSE, nhid: w.nhid}
	}
	return believedRoute{link: int32(o.link(w)), gw: addr16Of(w.gw), onlink: !w.direct, scope: netlink.SCOPE_UNIVERSE}
}

func (o routeOps) dirtyKey(k routeKey) routeKey       { k.metric = 0; return k }
func (o routeOps) batchable(believedRoute, bool) bool { return true }

func (o routeOps) queue(b *nl.Batch, k routeKey, w routeWant) {
	if w.nhid != 0 {
		b.AddRoute(nl.RouteSpec{Dst: k.dst(), NHID: w.nhid, Priority: k.priority()})
		return
	}
	b.AddRoute(nl.RouteSpec{Dst: k.dst(), Gw: w.gw, Onlink: !w.direct, Oif: o.link(w), Priority: k.priority()})
}

func (o routeOps) prepare(*passStats, routeKey, routeWant, believedRoute, bool, bool) error {
	return nil
}

func (o routeOps) write(k routeKey, w routeWant) error {
	if w.nhid != 0 {
		// Only a nexthopKernel makes nexthop mode (see decideRouteMode).
		return o.r.k.(nexthopKernel).routeReplaceNH(k.dst(), k.priority(), w.nhid)
	}
	return o.r.k.RouteReplace(o.r.scratch.route(k, o.link(w), w.gw, !w.direct, netlink.SCOPE_UNIVERSE))
}

func (o routeOps) addError(k routeKey, w routeWant, err error) error {
	if w.nhid != 0 {
		return fmt.Errorf("replace route %s nhid %d: %w", k.dst(), w.nhid, err)
	}
	return fmt.Errorf("replace route %s via %s dev %d: %w", k.dst(), w.gw, o.link(w), err)
}

// remove names the gateway and device of a classic route; a route through
// a nexthop is deleted by destination and metric alone, since naming the
// nexthop's gateway can fail with ESRCH.
func (o routeOps) remove(st *passStats, k routeKey, b believedRoute, drift bool) error {
	link, gw := int(b.link), b.gw.addr()
	if b.nhid != 0 {
		link, gw = 0, netip.Addr{}
	}
	err := o.r.wrote(st, kindRoute, opDel, drift, o.r.k.RouteDel(o.r.scratch.route(k, link, gw, false, b.scope)))
	if err != nil {
		return o.delError(k, b, err)
	}
	return nil
}

func (o routeOps) queueDel(batch *nl.Batch, k routeKey, b believedRoute) bool {
	if b.nhid != 0 {
		batch.DelRoute(k.dst(), k.priority())
		return true
	}
	batch.DelRouteVia(k.dst(), k.priority(), b.gw.addr(), int(b.link), uint8(b.scope))
	return true
}

func (o routeOps) delError(k routeKey, b believedRoute, err error) error {
	return fmt.Errorf("delete route %s via %s dev %d metric %d: %w", k.dst(), b.gw.addr(), b.link, k.priority(), err)
}

// nexthopOps: `ip nexthop replace id <id> via <subnet address> dev <dev>
// onlink`.
type nexthopOps struct{ r *Reconciler }

func (o nexthopOps) matches(b believedNexthop, w nexthopWant) bool {
	return b.gw == addr16Of(w.gw) && int(b.link) == o.r.own.link && b.onlink
}

func (o nexthopOps) written(w nexthopWant) believedNexthop {
	return believedNexthop{gw: addr16Of(w.gw), link: int32(o.r.own.link), onlink: true}
}

func (o nexthopOps) dirtyKey(id uint32) uint32            { return id }
func (o nexthopOps) batchable(believedNexthop, bool) bool { return true }
func (o nexthopOps) queue(b *nl.Batch, id uint32, w nexthopWant) {
	b.AddNexthop(id, w.gw, o.r.own.link)
}

func (o nexthopOps) prepare(*passStats, uint32, nexthopWant, believedNexthop, bool, bool) error {
	return nil
}

// write and remove are reached only with a nexthopKernel: without one
// nothing is desired and nothing is dumped.
func (o nexthopOps) write(id uint32, w nexthopWant) error {
	return o.r.k.(nexthopKernel).nexthopReplace(id, w.gw, o.r.own.link)
}

func (o nexthopOps) addError(id uint32, w nexthopWant, err error) error {
	return fmt.Errorf("replace nexthop id %d via %s dev %s onlink: %w", id, w.gw, o.r.opts.LinkName, err)
}

// remove deletes the object; the kernel drops any route still using it.
func (o nexthopOps) remove(st *passStats, id uint32, b believedNexthop, drift bool) error {
	err := o.r.wrote(st, kindNexthop, opDel, drift, o.r.k.(nexthopKernel).nexthopDel(id))
	if err != nil {
		return o.delError(id, b, err)
	}
	return nil
}

func (o nexthopOps) queueDel(batch *nl.Batch, id uint32, _ believedNexthop) bool {
	batch.DelNexthop(id)
	return true
}

func (o nexthopOps) delError(id uint32, b believedNexthop, err error) error {
	return fmt.Errorf("delete nexthop id %d via %s: %w", id, b.gw.addr(), err)
}
