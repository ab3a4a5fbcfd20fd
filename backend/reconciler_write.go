package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// writeOp is the op label of writes_total and errors_total.
type writeOp uint8

const (
	opAdd writeOp = iota
	opDel
	opDump
	numOps
)

func (o writeOp) String() string {
	return [...]string{"add", "del", "dump"}[o]
}

// failedKeys remembers the entries whose last write failed, with the
// error: they keep the reconciler out of sync until a pass fixes them.
type failedKeys struct {
	neigh map[netip.Addr]error
	fdb   map[[6]byte]error
	route map[routeKey]error
}

func newFailedKeys() failedKeys {
	return failedKeys{neigh: map[netip.Addr]error{}, fdb: map[[6]byte]error{}, route: map[routeKey]error{}}
}

func (f failedKeys) len() int { return len(f.neigh) + len(f.fdb) + len(f.route) }

func (f failedKeys) clearAll() {
	clear(f.neigh)
	clear(f.fdb)
	clear(f.route)
}

// tolerated reports errors that mean the kernel already is as we want it.
func tolerated(op writeOp, err error) bool {
	if op == opDel {
		return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
	}
	return errors.Is(err, unix.EEXIST)
}

// wrote accounts one write in the pass and the metrics, and returns the
// error that remains once tolerated errnos are taken as success.
func (r *Reconciler) wrote(st *passStats, kind entryKind, op writeOp, drift bool, err error) error {
	r.metrics.writes[kind][op].Inc()
	if err != nil && !tolerated(op, err) {
		r.metrics.errors[kind][op].Inc()
		return err
	}
	st.count(kind, op)
	if drift {
		st.drift[kind]++
		r.metrics.drift[kind].Inc()
	}
	return nil
}

// settle records the outcome for the peer owning an entry.
func (r *Reconciler) settle(kind entryKind, p *peer, err error) {
	was, wasErr := p.pending, p.err
	if err != nil {
		p.pending |= maskOf(kind)
		p.err = err
	} else if p.pending &^= maskOf(kind); p.pending == 0 {
		p.err = nil
	}
	if p.pending == was && p.err == wasErr {
		return
	}
	switch {
	case was == 0 && p.pending != 0:
		r.programmed--
	case was != 0 && p.pending == 0:
		r.programmed++
	}
	r.touched.add(p.subnet)
}

// peerPending marks every entry of an existing peer unconfirmed after its
// desired entries changed.
func (r *Reconciler) peerPending(p *peer) {
	if p.programmed() {
		r.programmed--
	}
	p.pending, p.err = p.kinds(), nil
	r.touched.add(p.subnet)
}

// A write in a full pass repairs drift unless an input or an earlier
// failure already explained it.
func (r *Reconciler) neighDrift(st *passStats, ip netip.Addr) bool {
	return st.full && !r.want.dirty.neigh.has(ip) && r.prevFailing.neigh[ip] == nil
}

func (r *Reconciler) fdbDrift(st *passStats, mac [6]byte) bool {
	return st.full && !r.want.dirty.fdb.has(mac) && r.prevFailing.fdb[mac] == nil
}

func (r *Reconciler) routeDrift(st *passStats, key routeKey) bool {
	return st.full && !r.want.dirty.route.has(key.dst) && r.prevFailing.route[key] == nil
}

func (r *Reconciler) syncNeigh(ip netip.Addr, st *passStats) {
	want, wanted := r.want.neigh[ip]
	believed, present := r.believed.neigh[ip]
	switch {
	case wanted && present && believed.mac == want.mac && believed.state&netlink.NUD_PERMANENT != 0:
		st.kept[kindNeigh]++
		delete(r.failing.neigh, ip)
		r.settle(kindNeigh, want.owner, nil)
	case wanted && r.scratch.batch != nil:
		r.scratch.batch.addNeigh(r.own, ip, want.mac, present)
		r.flushFullBatch(st)
	case wanted:
		r.neighAdded(ip, want, present, st, r.k.NeighSet(r.scratch.neigh(r.own, ip, want.mac)))
	case present:
		err := r.wrote(st, kindNeigh, opDel, r.neighDrift(st, ip), r.k.NeighDel(r.scratch.neighDel(r.own, ip)))
		if err != nil {
			err = fmt.Errorf("delete neighbour %s dev %s: %w", ip, r.opts.LinkName, err)
			r.failed(st, err)
			r.failing.neigh[ip] = err
			return
		}
		delete(r.believed.neigh, ip)
		delete(r.failing.neigh, ip)
	default:
		delete(r.failing.neigh, ip)
	}
}

// neighAdded accounts a neighbour replace that returned err.
func (r *Reconciler) neighAdded(ip netip.Addr, want neighWant, present bool, st *passStats, err error) {
	err = r.wrote(st, kindNeigh, opAdd, r.neighDrift(st, ip), err)
	if err != nil {
		err = fmt.Errorf("replace neighbour %s lladdr %s dev %s: %w", ip, macString(want.mac), r.opts.LinkName, err)
		r.failed(st, err)
		r.failing.neigh[ip] = err
	} else {
		r.believed.neigh[ip] = believedNeigh{mac: want.mac, state: netlink.NUD_PERMANENT}
		delete(r.failing.neigh, ip)
	}
	if err == nil || present {
		st.kept[kindNeigh]++
	}
	r.settle(kindNeigh, want.owner, err)
}

func fdbMatches(believed believedFDB, want fdbWant) bool {
	return believed.dst == want.dst && believed.state&netlink.NUD_PERMANENT != 0 &&
		believed.flags&netlink.NTF_SELF != 0 && believed.vni == 0 && len(believed.extra) == 0
}

func (r *Reconciler) syncFDB(mac [6]byte, st *passStats) {
	want, wanted := r.want.fdb[mac]
	believed, present := r.believed.fdb[mac]
	switch {
	case wanted && present && fdbMatches(believed, want):
		st.kept[kindFDB]++
		delete(r.failing.fdb, mac)
		r.settle(kindFDB, want.owner, nil)
	case wanted && r.scratch.batch != nil && (!present || len(believed.extra) == 0):
		r.scratch.batch.addFDB(r.own.link, mac, want.dst, present)
		r.flushFullBatch(st)
	case wanted:
		var err error
		if present && len(believed.extra) > 0 {
			// A replace rewrites only the first destination, or nothing
			// when ours is among the others: remove the wrong ones first.
			err = r.deleteFDBRemotes(mac, believed, want.dst, st)
		}
		if err == nil {
			err = r.wrote(st, kindFDB, opAdd, r.fdbDrift(st, mac), r.k.NeighSet(r.scratch.fdb(r.own.link, mac, want.dst)))
			if err != nil {
				err = fmt.Errorf("replace fdb %s dst %s dev %s: %w", macString(mac), want.dst, r.opts.LinkName, err)
			}
		}
		r.fdbAdded(mac, want, present, st, err)
	case present:
		if err := r.deleteFDBRemotes(mac, believed, netip.Addr{}, st); err != nil {
			r.failed(st, err)
			r.failing.fdb[mac] = err
			return
		}
		delete(r.believed.fdb, mac)
		delete(r.failing.fdb, mac)
	default:
		delete(r.failing.fdb, mac)
	}
}

// fdbAdded records the outcome of an FDB replace: err is already
// accounted and wrapped.
func (r *Reconciler) fdbAdded(mac [6]byte, want fdbWant, present bool, st *passStats, err error) {
	if err != nil {
		r.failed(st, err)
		r.failing.fdb[mac] = err
	} else {
		r.believed.fdb[mac] = believedFDB{dst: want.dst, state: netlink.NUD_PERMANENT, flags: netlink.NTF_SELF}
		delete(r.failing.fdb, mac)
	}
	if err == nil || present {
		st.kept[kindFDB]++
	}
	r.settle(kindFDB, want.owner, err)
}

// deleteFDBRemotes deletes every destination of the entry except keep.
// The destination must be given: the VXLAN driver rejects an FDB delete
// without one.
func (r *Reconciler) deleteFDBRemotes(mac [6]byte, believed believedFDB, keep netip.Addr, st *passStats) error {
	del := func(dst netip.Addr) error {
		if dst == keep {
			return nil
		}
		err := r.wrote(st, kindFDB, opDel, r.fdbDrift(st, mac), r.k.NeighDel(r.scratch.fdb(r.own.link, mac, dst)))
		if err != nil {
			return fmt.Errorf("delete fdb %s dst %s dev %s: %w", macString(mac), dst, r.opts.LinkName, err)
		}
		return nil
	}
	if err := del(believed.dst); err != nil {
		return err
	}
	for _, dst := range believed.extra {
		if err := del(dst); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) syncRoute(key routeKey, st *passStats) {
	want, owner := r.want.route(key.dst)
	wanted := owner != nil && key.priority == 0
	believed, present := r.believed.route[key]
	link := r.own.link
	if want.direct {
		link = r.opts.ExtLinkIndex
	}
	switch {
	case wanted && present && believed.link == link && believed.gw == want.gw && believed.onlink == !want.direct:
		st.kept[kindRoute]++
		delete(r.failing.route, key)
		r.settle(kindRoute, owner, nil)
	case wanted && r.scratch.batch != nil:
		r.scratch.batch.addRoute(key, link, want.gw, !want.direct, present)
		r.flushFullBatch(st)
	case wanted:
		err := r.k.RouteReplace(r.scratch.route(key, link, want.gw, !want.direct, netlink.SCOPE_UNIVERSE))
		r.routeAdded(key, link, want, owner, present, st, err)
	case present:
		err := r.wrote(st, kindRoute, opDel, r.routeDrift(st, key), r.k.RouteDel(r.scratch.route(key, believed.link, believed.gw, false, believed.scope)))
		if err != nil {
			err = fmt.Errorf("delete route %s via %s dev %d metric %d: %w", key.dst, believed.gw, believed.link, key.priority, err)
			r.failed(st, err)
			r.failing.route[key] = err
			return
		}
		delete(r.believed.route, key)
		delete(r.failing.route, key)
	default:
		delete(r.failing.route, key)
	}
}

// routeAdded accounts a route replace that returned err.
func (r *Reconciler) routeAdded(key routeKey, link int, want routeWant, owner *peer, present bool, st *passStats, err error) {
	err = r.wrote(st, kindRoute, opAdd, r.routeDrift(st, key), err)
	if err != nil {
		err = fmt.Errorf("replace route %s via %s dev %d: %w", key.dst, want.gw, link, err)
		r.failed(st, err)
		r.failing.route[key] = err
	} else {
		r.believed.route[key] = believedRoute{link: link, gw: want.gw, onlink: !want.direct, scope: netlink.SCOPE_UNIVERSE}
		delete(r.failing.route, key)
	}
	if err == nil || present {
		st.kept[kindRoute]++
	}
	r.settle(kindRoute, owner, err)
}

// writeScratch holds the netlink messages of one write, reused so that a
// write allocates nothing on our side (the handle serialises them before
// returning; the fake copies).
type writeScratch struct {
	n       netlink.Neigh
	rt      netlink.Route
	dst     net.IPNet
	ipBuf   [16]byte
	gwBuf   [16]byte
	maskBuf [16]byte
	macBuf  [6]byte
	// batch is non-nil while a full pass queues its adds (the Kernel is
	// a batchSender); batchBuf is its reused storage.
	batch    *writeBatch
	batchBuf writeBatch
}

func putAddr(buf *[16]byte, a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	if a.Is4() {
		b := a.As4()
		copy(buf[:], b[:])
		return buf[:4]
	}
	*buf = a.As16()
	return buf[:]
}

func (s *writeScratch) hw(mac [6]byte) net.HardwareAddr {
	s.macBuf = mac
	return s.macBuf[:]
}

func (s *writeScratch) neigh(o ownership, ip netip.Addr, mac [6]byte) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: o.link, Family: o.family, State: netlink.NUD_PERMANENT,
		IP: putAddr(&s.ipBuf, ip), HardwareAddr: s.hw(mac)}
	return &s.n
}

func (s *writeScratch) neighDel(o ownership, ip netip.Addr) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: o.link, Family: o.family, IP: putAddr(&s.ipBuf, ip)}
	return &s.n
}

// fdb is `bridge fdb replace <mac> dev <link> dst <dst> self permanent`
// (and the matching delete).
func (s *writeScratch) fdb(link int, mac [6]byte, dst netip.Addr) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: link, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: putAddr(&s.ipBuf, dst), HardwareAddr: s.hw(mac)}
	return &s.n
}

// route is `<dst> via <gw> dev <link> [onlink]` in the main table, scope
// as given, protocol left to the default (boot) like flannel.
func (s *writeScratch) route(key routeKey, link int, gw netip.Addr, onlink bool, scope netlink.Scope) *netlink.Route {
	ip := putAddr(&s.ipBuf, key.dst.Addr())
	mask := s.maskBuf[:len(ip)]
	clear(mask)
	for i := 0; i < key.dst.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	s.dst = net.IPNet{IP: ip, Mask: mask}
	s.rt = netlink.Route{LinkIndex: link, Dst: &s.dst, Gw: putAddr(&s.gwBuf, gw), Table: unix.RT_TABLE_MAIN,
		Scope: scope, Priority: key.priority}
	if onlink {
		s.rt.Flags = int(netlink.FLAG_ONLINK)
	}
	return &s.rt
}
