package backend

// Kernel notifications (the Felix way). When the Kernel can subscribe to
// rtnetlink notifications (EventSource: NetlinkKernel), the believed state
// is kept current from them instead of being dumped on every periodic
// pass. A notification that agrees with what is believed (the echo of our
// own write) changes nothing; one that does not is applied to the believed
// state and asks for a full pass at once, which diffs desired against
// believed in memory and repairs the drift. The periodic pass then costs
// no dump. A dump still happens on the first pass, when notifications
// were lost (the socket overflowed: ENOBUFS), after failed writes, when
// our device or the external link changes (the kernel flushes routes
// without telling), and every DumpInterval as a safety net.
//
// The socket is read only by the Run goroutine (at the start of each step
// and after each batch a pass sends, so that a pass's own echoes never
// pile up); a second goroutine only waits for it to become readable and
// wakes the loop.

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// DefaultDumpInterval is how often a reconciler whose Kernel reports
// changes still re-reads the whole kernel (ReconcilerOptions.DumpInterval).
const DefaultDumpInterval = 15 * time.Minute

// EventSource is an optional Kernel extension: a subscription to the
// kernel's rtnetlink notifications of links, neighbours and FDB entries,
// routes and nexthop objects, made together with the Kernel so that no
// change between it and the reconciler's first dump is missed.
// NetlinkKernel implements it, and backendtest.FakeKernel once its events
// are enabled. The reconciler's loop alone drains it.
type EventSource interface {
	// Subscribed reports whether the subscription exists; without it
	// every full pass dumps.
	Subscribed() bool
	// WaitEvents blocks until a notification (or a loss) is queued or
	// timeout passes, and reports whether one is.
	WaitEvents(timeout time.Duration) (bool, error)
	// DrainEvents hands every queued notification (message type and
	// payload, valid during the call) to each without blocking; lost
	// reports notifications dropped since the last call (ENOBUFS).
	DrainEvents(each func(typ uint16, msg []byte)) (lost bool, err error)
}

// dumpReason labels dumps_total: why a full pass re-read the kernel.
type dumpReason uint8

const (
	dumpStart    dumpReason = iota // the first pass, or until a dump succeeds
	dumpNoEvents                   // the Kernel reports no changes
	dumpLost                       // notifications were lost
	dumpFailure                    // after a failed pass or write
	dumpDevice                     // our device or the external link changed
	dumpInterval                   // the safety interval passed
	numDumpReasons
)

func (d dumpReason) String() string {
	return [...]string{"start", "no-events", "events-lost", "failure", "device", "interval"}[d]
}

// requestDump makes the next full pass re-read the kernel, and run soon.
func (r *Reconciler) requestDump(why dumpReason) {
	r.markDump(why)
	r.requestFull()
}

// markDump makes the next full pass re-read the kernel.
func (r *Reconciler) markDump(why dumpReason) {
	if !r.dumpDue {
		r.dumpDue, r.dumpWhy = true, why
	}
}

// requestFull asks for a full pass at once, unless a failure's backoff
// already schedules one.
func (r *Reconciler) requestFull() {
	if r.failStreak == 0 {
		r.fullNow = true
	}
}

// dumpReasonNow says whether this full pass must read the kernel, and why.
func (r *Reconciler) dumpReasonNow(now time.Time) (dumpReason, bool) {
	switch {
	case !r.loaded:
		return dumpStart, true
	case r.events == nil:
		return dumpNoEvents, true
	case r.dumpDue:
		return r.dumpWhy, true
	case now.Sub(r.lastDump) >= r.opts.DumpInterval:
		return dumpInterval, true
	}
	return 0, false
}

// watchEvents wakes the loop whenever notifications are queued, then
// waits for the loop to read them (rearm) before waiting again. It
// returns when ctx ends.
func (r *Reconciler) watchEvents(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		ready, err := r.events.WaitEvents(250 * time.Millisecond)
		if err != nil {
			r.log.Warn("waiting for kernel notifications failed; relying on dumps", "error", err)
			return
		}
		if !ready {
			continue
		}
		r.wake()
		select {
		case <-r.rearm:
		case <-ctx.Done():
		}
	}
}

// drainEvents applies every queued notification to the believed state.
// Before the believed state was loaded, and while a dump is due anyway,
// they are read and dropped: the dump supersedes them.
func (r *Reconciler) drainEvents() {
	if r.events == nil {
		return
	}
	apply := r.loaded && !r.dumpDue
	lost, err := r.events.DrainEvents(func(typ uint16, data []byte) {
		r.metrics.events.Inc()
		if apply && r.applyEvent(typ, data) {
			r.metrics.eventChanges.Inc()
			r.requestFull()
		}
	})
	if err != nil {
		r.log.Warn("reading kernel notifications failed; dumping the kernel", "error", err)
	}
	if (lost || err != nil) && r.loaded {
		r.requestDump(dumpLost)
	}
	select {
	case r.rearm <- struct{}{}:
	default:
	}
}

// applyEvent applies one notification; it reports whether the believed
// state changed (someone else changed one of our entries).
func (r *Reconciler) applyEvent(typ uint16, data []byte) bool {
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		r.linkEvent(data, typ == unix.RTM_DELLINK)
		return false
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		if len(data) > 0 && data[0] == unix.AF_BRIDGE {
			return r.believed.fdbEvent(data, r.own.link, typ == unix.RTM_DELNEIGH)
		}
		return r.believed.neighEvent(data, r.own, typ == unix.RTM_DELNEIGH)
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		return r.believed.routeEvent(data, r.own, typ == unix.RTM_DELROUTE)
	case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		if !r.own.nexthops {
			return false
		}
		return r.believed.nexthopEvent(data, r.own, typ == unix.RTM_DELNEXTHOP)
	}
	return false
}

// linkEvent handles a notification of our device or the external link.
// The kernel removes routes (and neighbours) of a link that goes down or
// away without telling, so that asks for a dump; one that comes back up
// asks for a full pass, which writes them again. Other changes (operstate,
// carrier, addresses of the link) ask for nothing.
func (r *Reconciler) linkEvent(data []byte, del bool) {
	idx := nl.LinkIndexOf(data)
	var down *bool
	switch {
	case idx == 0:
		return
	case idx == r.own.link:
		down = &r.linkDown
	case idx == r.own.extLink:
		down = &r.extLinkDown
	default:
		return
	}
	up := !del && nl.LinkUp(data)
	switch {
	case !up && (del || !*down):
		r.requestDump(dumpDevice)
	case up && *down:
		r.requestFull()
	}
	*down = !up
}

// neighEvent applies a neighbour notification of our device.
func (b *believedState) neighEvent(data []byte, o ownership, del bool) bool {
	n, ok, err := nl.ParseNeigh(data, func(h nl.NeighHeader) bool {
		return h.Ifindex == o.link && int(h.Family) == o.family
	})
	if err != nil || !ok || !o.ownNeigh(n.Dst) {
		return false
	}
	got := believedNeigh{state: n.State}
	if len(n.LLAddr) == len(got.mac) {
		copy(got.mac[:], n.LLAddr)
	}
	key := addr16Of(n.Dst)
	have, present := b.neigh[key]
	switch {
	case del:
		delete(b.neigh, key)
		return present
	case present && sameNeigh(have, got):
		return false
	case !present && got.state&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0:
		// A delete (ours too) first marks the entry failed; one being
		// resolved is incomplete: neither is an entry to act on yet.
		return false
	}
	b.neigh[key] = got
	return true
}

func sameNeigh(a, b believedNeigh) bool {
	return a.mac == b.mac && (a.state&netlink.NUD_PERMANENT != 0) == (b.state&netlink.NUD_PERMANENT != 0)
}

// fdbEvent applies an FDB notification of our device. An entry can hold
// several destinations and a notification names one: a destination we did
// not believe is added to the entry's others, so that the pass deletes
// what is not wanted before it writes (a delete of one that a replace
// already removed is tolerated).
func (b *believedState) fdbEvent(data []byte, link int, del bool) bool {
	n, ok, err := nl.ParseNeigh(data, func(h nl.NeighHeader) bool {
		return h.Ifindex == link && h.Family == unix.AF_BRIDGE
	})
	if err != nil || !ok {
		return false
	}
	mac, ok := unicastMAC(n.LLAddr)
	if !ok {
		return false
	}
	have, present := b.fdb[mac]
	switch {
	case del:
		return present && b.dropFDBRemote(mac, have, n.Dst)
	case n.State&netlink.NUD_PERMANENT == 0:
		// Learned entries are the kernel's; ours turned dynamic is drift.
		if !present || have.state&netlink.NUD_PERMANENT == 0 {
			return false
		}
		have.state = n.State
		b.fdb[mac] = have
		return true
	case !present:
		b.fdb[mac] = newBelievedFDB(n.Dst, n.State, n.Flags, n.VNI)
		return true
	case have.first() == n.Dst:
		got := newBelievedFDB(n.Dst, n.State, n.Flags, n.VNI)
		got.extra = have.extra
		if have.flags&netlink.NTF_SELF == got.flags&netlink.NTF_SELF && have.vni == got.vni &&
			have.state&netlink.NUD_PERMANENT != 0 {
			return false
		}
		b.fdb[mac] = got
		return true
	}
	if slices.Contains(have.others(), n.Dst) {
		return false
	}
	b.fdb[mac] = have.appended(n.Dst)
	return true
}

// dropFDBRemote removes one destination of a believed entry.
func (b *believedState) dropFDBRemote(mac [6]byte, have believedFDB, dst netip.Addr) bool {
	others := have.others()
	if have.first() == dst {
		if len(others) == 0 {
			delete(b.fdb, mac)
			return true
		}
		have.dst = addr16Of(others[0])
		b.fdb[mac] = have.withOthers(others[1:])
		return true
	}
	if i := slices.Index(others, dst); i >= 0 {
		b.fdb[mac] = have.withOthers(slices.Delete(slices.Clone(others), i, i+1))
		return true
	}
	return false
}

// routeEvent applies a main-table route notification. A route that
// replaced one of ours with one that is not ours (another device, say)
// takes ours out of the believed state, as a dump would.
func (b *believedState) routeEvent(data []byte, o ownership, del bool) bool {
	m, ok, err := nl.ParseRoute(data, uint8(o.family))
	if err != nil || !ok || m.Table != unix.RT_TABLE_MAIN || !m.Dst.IsValid() {
		return false
	}
	rf := routeFields{table: m.Table, protocol: int(m.Protocol), scope: netlink.Scope(m.Scope),
		flags: int(m.Flags), dst: m.Dst, gw: m.Gw, link: m.Oif, priority: m.Priority, nhid: m.NHID}
	key, got, ours := o.routeOf(rf)
	if !ours {
		key = routeKeyOf(m.Dst, m.Priority)
	}
	have, present := b.route[key]
	switch {
	case del:
		if ours && present {
			delete(b.route, key)
			return true
		}
		return false
	case !ours:
		if present {
			delete(b.route, key)
			return true
		}
		return false
	case present && sameRoute(have, got):
		return false
	}
	b.route[key] = got
	return true
}

func sameRoute(a, b believedRoute) bool {
	return a.nhid == b.nhid && (a.nhid != 0 || (a.link == b.link && a.gw == b.gw && a.onlink == b.onlink))
}

// nexthopEvent applies a nexthop notification. When one of our objects
// goes, the kernel removes the routes through it without a notification
// of its own: those are taken out of the believed state too.
func (b *believedState) nexthopEvent(data []byte, o ownership, del bool) bool {
	n, err := nl.ParseNexthop(data)
	if err != nil || !ownNexthopID(n.ID) {
		return false
	}
	have, present := b.nexthop[n.ID]
	ours := n.Oif == o.link && !n.Group && !n.Blackhole
	if del || !ours {
		if !present {
			return false
		}
		delete(b.nexthop, n.ID)
		if del {
			b.dropRoutesVia(n.ID, have.gw.addr(), o.network)
		}
		return true
	}
	got := believedNexthop{gw: addr16Of(n.Gw), link: int32(n.Oif), onlink: n.Flags&unix.RTNH_F_ONLINK != 0}
	if present && have == got {
		return false
	}
	b.nexthop[n.ID] = got
	return true
}

// dropRoutesVia forgets the routes through nexthop id: a peer's route
// goes to its subnet, whose address is the nexthop's gateway, so only
// the prefix lengths inside network need looking up.
func (b *believedState) dropRoutesVia(id uint32, gw netip.Addr, network netip.Prefix) {
	if !gw.IsValid() {
		return
	}
	for bits := network.Bits() + 1; bits <= gw.BitLen(); bits++ {
		p, err := gw.Prefix(bits)
		if err != nil || p.Addr() != gw {
			continue
		}
		k := routeKeyOf(p, 0)
		if have, ok := b.route[k]; ok && have.nhid == id {
			delete(b.route, k)
		}
	}
}
