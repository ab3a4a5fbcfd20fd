package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// leanDumper is a Kernel that reads our entries straight from netlink into
// believed state, without a netlink.Neigh or netlink.Route per entry.
// NetlinkKernel implements it; other Kernels (the fake) go through
// NeighList and RouteListFiltered. On error the believed state may hold a
// partial dump: the caller must not trust it until a dump succeeds.
type leanDumper interface {
	dumpBelieved(b *believedState, o ownership) error
}

// Sizes of the fixed headers (struct ndmsg, struct rtmsg).
const (
	ndmsgLen = unix.SizeofNdMsg
	rtmsgLen = unix.SizeofRtMsg
)

// nlaTypeMask strips the NLA_F_NESTED and NLA_F_NET_BYTEORDER bits.
const nlaTypeMask = 0x3fff

// attrIter walks the rtattrs of a message without allocating.
type attrIter struct {
	b   []byte
	err error
}

// next returns the next attribute; ok is false at the end or on a
// malformed attribute (then err is set).
func (it *attrIter) next() (typ uint16, val []byte, ok bool) {
	if len(it.b) < 4 {
		return 0, nil, false
	}
	l := int(binary.NativeEndian.Uint16(it.b[0:]))
	if l < 4 || l > len(it.b) {
		it.err = fmt.Errorf("rtattr length %d with %d bytes left", l, len(it.b))
		return 0, nil, false
	}
	typ, val = binary.NativeEndian.Uint16(it.b[2:])&nlaTypeMask, it.b[4:l]
	aligned := min((l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(it.b))
	it.b = it.b[aligned:]
	return typ, val, true
}

// addrOf decodes an address attribute the way addrFromIP does.
func addrOf(val []byte) netip.Addr {
	a, ok := netip.AddrFromSlice(val)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func u32Of(val []byte) (uint32, bool) {
	if len(val) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(val), true
}

// ndmsgFields are the fixed fields of a neighbour message.
type ndmsgFields struct {
	family  uint8
	ifindex int
	state   uint16
	flags   uint8
}

func parseNdmsg(data []byte) (ndmsgFields, attrIter, error) {
	if len(data) < ndmsgLen {
		return ndmsgFields{}, attrIter{}, fmt.Errorf("neighbour message of %d bytes, want at least %d", len(data), ndmsgLen)
	}
	ne := binary.NativeEndian
	f := ndmsgFields{family: data[0], ifindex: int(int32(ne.Uint32(data[4:]))), state: ne.Uint16(data[8:]), flags: data[10]}
	return f, attrIter{b: data[ndmsgLen:]}, nil
}

// addNeighMsg records one RTM_NEWNEIGH of a neighbour dump if it is ours,
// with the rules of loadNeighs.
func (b *believedState) addNeighMsg(data []byte, o ownership) error {
	f, it, err := parseNdmsg(data)
	if err != nil || f.ifindex != o.link || int(f.family) != o.family {
		return err
	}
	var ip netip.Addr
	var mac [6]byte
	for typ, val, ok := it.next(); ok; typ, val, ok = it.next() {
		switch typ {
		case unix.NDA_DST:
			ip = addrOf(val)
		case unix.NDA_LLADDR:
			if len(val) == len(mac) {
				copy(mac[:], val)
			}
		}
	}
	if it.err != nil {
		return fmt.Errorf("neighbour on link %d: %w", f.ifindex, it.err)
	}
	if !ip.IsValid() || ip.Is4() != (o.family == unix.AF_INET) {
		return nil
	}
	b.neigh[ip] = believedNeigh{mac: mac, state: f.state}
	return nil
}

// addFDBMsg records one RTM_NEWNEIGH of an AF_BRIDGE dump if it is a
// permanent unicast entry on our device, with the rules of loadFDB.
func (b *believedState) addFDBMsg(data []byte, link int) error {
	f, it, err := parseNdmsg(data)
	if err != nil || f.ifindex != link || f.family != unix.AF_BRIDGE || f.state&netlink.NUD_PERMANENT == 0 {
		return err
	}
	var dst netip.Addr
	var lladdr []byte
	var vni uint32
	for typ, val, ok := it.next(); ok; typ, val, ok = it.next() {
		switch typ {
		case unix.NDA_DST:
			dst = addrOf(val)
		case unix.NDA_LLADDR:
			lladdr = val
		case unix.NDA_VNI:
			vni, _ = u32Of(val)
		}
	}
	if it.err != nil {
		return fmt.Errorf("fdb entry on link %d: %w", f.ifindex, it.err)
	}
	mac, ok := unicastMAC(lladdr)
	if !ok {
		return nil
	}
	if believed, dup := b.fdb[mac]; dup {
		believed.extra = append(believed.extra, dst)
		b.fdb[mac] = believed
		return nil
	}
	b.fdb[mac] = believedFDB{dst: dst, state: f.state, flags: f.flags, vni: vni}
	return nil
}

// addRouteMsg records one RTM_NEWROUTE of a route dump if ownership says
// it is ours, with the rules of loadRoutes.
func (b *believedState) addRouteMsg(data []byte, o ownership) error {
	if len(data) < rtmsgLen {
		return fmt.Errorf("route message of %d bytes, want at least %d", len(data), rtmsgLen)
	}
	if int(data[0]) != o.family || binary.NativeEndian.Uint32(data[8:])&unix.RTM_F_CLONED != 0 {
		return nil
	}
	rf := routeFields{table: int(data[4]), protocol: int(data[5]), scope: netlink.Scope(data[6]),
		flags: int(binary.NativeEndian.Uint32(data[8:]))}
	dstLen := int(data[1])
	it := attrIter{b: data[rtmsgLen:]}
	for typ, val, ok := it.next(); ok; typ, val, ok = it.next() {
		switch typ {
		case unix.RTA_DST:
			rf.dst = prefixOf(val, dstLen)
		case unix.RTA_GATEWAY:
			rf.gw = addrOf(val)
		case unix.RTA_OIF:
			v, _ := u32Of(val)
			rf.link = int(v)
		case unix.RTA_PRIORITY:
			v, _ := u32Of(val)
			rf.priority = int(v)
		case unix.RTA_TABLE:
			v, _ := u32Of(val)
			rf.table = int(v)
		}
	}
	if it.err != nil {
		return fmt.Errorf("route: %w", it.err)
	}
	if key, believed, ours := o.routeOf(rf); ours {
		if _, dup := b.route[key]; !dup {
			b.route[key] = believed
		}
	}
	return nil
}

// prefixOf decodes RTA_DST with the message's dst_len the way
// prefixFromIPNet does; invalid when it makes no prefix.
func prefixOf(val []byte, bits int) netip.Prefix {
	a, ok := netip.AddrFromSlice(val)
	if !ok || bits > 8*len(val) {
		return netip.Prefix{}
	}
	if a.Is4In6() {
		a, bits = a.Unmap(), bits-96
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
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
func dumpBelievedOn(s *nlSocket, b *believedState, o ownership) error {
	err := leanDump(kindNeigh, func() { clear(b.neigh) }, func() error {
		seq := s.begin(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, ndmsgBytes(uint8(o.family), 0))
		s.req = appendAttrU32(s.req, unix.NDA_IFINDEX, uint32(o.link))
		return s.dump(seq, func(data []byte) error { return b.addNeighMsg(data, o) })
	})
	if err != nil {
		return err
	}
	err = leanDump(kindFDB, func() { clear(b.fdb) }, func() error {
		seq := s.begin(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, ndmsgBytes(unix.AF_BRIDGE, o.link))
		return s.dump(seq, func(data []byte) error { return b.addFDBMsg(data, o.link) })
	})
	if err != nil {
		return err
	}
	return leanDump(kindRoute, func() { clear(b.route) }, func() error {
		seq := s.begin(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, rtmsgDumpBytes(uint8(o.family), unix.RT_TABLE_MAIN))
		return s.dump(seq, func(data []byte) error { return b.addRouteMsg(data, o) })
	})
}

func ndmsgBytes(family uint8, ifindex int) []byte {
	var h [ndmsgLen]byte
	h[0] = family
	binary.NativeEndian.PutUint32(h[4:], uint32(int32(ifindex)))
	return h[:]
}

func rtmsgDumpBytes(family, table uint8) []byte {
	var h [rtmsgLen]byte
	h[0], h[4] = family, table
	return h[:]
}
