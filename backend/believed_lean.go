package backend

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// leanDumper is a Kernel that reads our entries straight from netlink into
// believed state, without a netlink.Neigh or netlink.Route per entry.
// NetlinkKernel implements it; other Kernels (the fake) go through
// NeighList and RouteListFiltered. On error the believed state may hold a
// partial dump: the caller must not trust it until a dump succeeds.
type leanDumper interface {
	dumpBelieved(b *believedState, o ownership) error
}

// addNeighMsg records one RTM_NEWNEIGH of a neighbour dump if it is ours,
// with the rules of loadNeighs.
func (b *believedState) addNeighMsg(data []byte, o ownership) error {
	n, ok, err := nl.ParseNeigh(data, func(h nl.NeighHeader) bool {
		return h.Ifindex == o.link && int(h.Family) == o.family
	})
	if err != nil || !ok {
		return err
	}
	if !o.ownNeigh(n.Dst) {
		return nil
	}
	var mac [6]byte
	if len(n.LLAddr) == len(mac) {
		copy(mac[:], n.LLAddr)
	}
	b.neigh[addr16Of(n.Dst)] = believedNeigh{mac: mac, state: n.State}
	return nil
}

// addFDBMsg records one RTM_NEWNEIGH of an AF_BRIDGE dump if it is a
// permanent unicast entry on our device, with the rules of loadFDB.
func (b *believedState) addFDBMsg(data []byte, link int) error {
	n, ok, err := nl.ParseNeigh(data, func(h nl.NeighHeader) bool {
		return h.Ifindex == link && h.Family == unix.AF_BRIDGE && h.State&netlink.NUD_PERMANENT != 0
	})
	if err != nil || !ok {
		return err
	}
	mac, ok := unicastMAC(n.LLAddr)
	if !ok {
		return nil
	}
	if believed, dup := b.fdb[mac]; dup {
		b.fdb[mac] = believed.appended(n.Dst)
		return nil
	}
	b.fdb[mac] = newBelievedFDB(n.Dst, n.State, n.Flags, n.VNI)
	return nil
}

// addRouteMsg records one RTM_NEWROUTE of a route dump if ownership says
// it is ours, with the rules of loadRoutes.
func (b *believedState) addRouteMsg(data []byte, o ownership) error {
	m, ok, err := nl.ParseRoute(data, uint8(o.family))
	if err != nil || !ok {
		return err
	}
	rf := routeFields{table: m.Table, protocol: int(m.Protocol), scope: netlink.Scope(m.Scope),
		flags: int(m.Flags), dst: m.Dst, gw: m.Gw, link: m.Oif, priority: m.Priority, nhid: m.NHID}
	if key, believed, ours := o.routeOf(rf); ours {
		if _, dup := b.route[key]; !dup {
			b.route[key] = believed
		}
	}
	return nil
}

// leanDump runs one dump into believed state, retrying while the kernel
// interrupts it; reset empties what a failed attempt left behind.
func leanDump(kind entryKind, reset func(), run func() error) error {
	for attempt := 1; ; attempt++ {
		reset()
		err := run()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, netlink.ErrDumpInterrupted):
			return &dumpError{kind: kind, err: fmt.Errorf("dump %s entries: %w", kind, err)}
		case attempt == maxDumpAttempts:
			return &dumpError{kind: kind, err: fmt.Errorf("dump %s entries: interrupted %d times in a row: %w", kind, attempt, err)}
		}
	}
}

// dumpBelievedOn fills b from three dumps on s: neighbours of our family
// on our link (NDA_IFINDEX filter), the FDB of our link (ndm_ifindex
// filter) and the main table (table filter; the kernel applies both under
// strict checking, the parsers check again).
func dumpBelievedOn(s *nl.Socket, b *believedState, o ownership) error {
	err := leanDump(kindNeigh, func() { clear(b.neigh) }, func() error {
		return s.DumpNeigh(uint8(o.family), o.link, func(data []byte) error { return b.addNeighMsg(data, o) })
	})
	if err != nil {
		return err
	}
	err = leanDump(kindFDB, func() { clear(b.fdb) }, func() error {
		return s.DumpFDB(o.link, func(data []byte) error { return b.addFDBMsg(data, o.link) })
	})
	if err != nil {
		return err
	}
	err = leanDump(kindRoute, func() { clear(b.route) }, func() error {
		return s.DumpRoutes(uint8(o.family), unix.RT_TABLE_MAIN, func(data []byte) error { return b.addRouteMsg(data, o) })
	})
	if err != nil || !o.nexthops {
		return err
	}
	return leanDump(kindNexthop, func() { clear(b.nexthop) }, func() error {
		return s.DumpNexthops(o.link, func(data []byte) error { return b.addNexthopMsg(data, o) })
	})
}

// addNexthopMsg records one RTM_NEWNEXTHOP if it is ours: on our device,
// with an id in our range.
func (b *believedState) addNexthopMsg(data []byte, o ownership) error {
	n, err := nl.ParseNexthop(data)
	if err != nil || n.Oif != o.link || !ownNexthopID(n.ID) || n.Group || n.Blackhole {
		return err
	}
	b.nexthop[n.ID] = believedNexthop{gw: addr16Of(n.Gw), link: int32(n.Oif), onlink: n.Flags&unix.RTNH_F_ONLINK != 0}
	return nil
}
