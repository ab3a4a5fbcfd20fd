package nl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Sizes of the fixed headers (struct ndmsg, struct rtmsg).
const (
	NdmsgLen = unix.SizeofNdMsg
	RtmsgLen = unix.SizeofRtMsg
)

// rtaNHID is RTA_NH_ID (linux/rtnetlink.h; not in x/sys/unix).
const rtaNHID = 30

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

// addrOf decodes an address attribute (4 or 16 bytes, v4-mapped unmapped).
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

// NeighHeader is the fixed part of a neighbour message (struct ndmsg).
type NeighHeader struct {
	Family  uint8
	Ifindex int
	State   uint16
	Flags   uint8
}

// Neigh is a decoded RTM_NEWNEIGH: a neighbour or an FDB entry. LLAddr
// aliases the receive buffer and is valid only during the callback.
type Neigh struct {
	NeighHeader
	Dst    netip.Addr
	LLAddr []byte
	VNI    uint32
}

// ParseNeigh decodes a neighbour message. The attributes are read only
// when want accepts the header; ok reports that.
func ParseNeigh(data []byte, want func(NeighHeader) bool) (n Neigh, ok bool, err error) {
	if len(data) < NdmsgLen {
		return Neigh{}, false, fmt.Errorf("neighbour message of %d bytes, want at least %d", len(data), NdmsgLen)
	}
	ne := binary.NativeEndian
	n.NeighHeader = NeighHeader{Family: data[0], Ifindex: int(int32(ne.Uint32(data[4:]))), State: ne.Uint16(data[8:]), Flags: data[10]}
	if !want(n.NeighHeader) {
		return Neigh{}, false, nil
	}
	it := attrIter{b: data[NdmsgLen:]}
	for typ, val, more := it.next(); more; typ, val, more = it.next() {
		switch typ {
		case unix.NDA_DST:
			n.Dst = addrOf(val)
		case unix.NDA_LLADDR:
			n.LLAddr = val
		case unix.NDA_VNI:
			n.VNI, _ = u32Of(val)
		}
	}
	if it.err != nil {
		return Neigh{}, false, fmt.Errorf("neighbour on link %d: %w", n.Ifindex, it.err)
	}
	return n, true, nil
}

// Route is a decoded RTM_NEWROUTE.
type Route struct {
	Family, Protocol, Scope, Type uint8
	Flags                         uint32
	// Table is RTA_TABLE when present (tables above 255), else rtm_table.
	Table         int
	Dst           netip.Prefix
	Gw            netip.Addr
	Oif, Priority int
	// NHID is RTA_NH_ID: the route points at a nexthop object.
	NHID uint32
}

// ParseRoute decodes a route message of the given family. ok is false,
// without reading the attributes, for another family and for cloned
// (cache) routes.
func ParseRoute(data []byte, family uint8) (r Route, ok bool, err error) {
	if len(data) < RtmsgLen {
		return Route{}, false, fmt.Errorf("route message of %d bytes, want at least %d", len(data), RtmsgLen)
	}
	flags := binary.NativeEndian.Uint32(data[8:])
	if data[0] != family || flags&unix.RTM_F_CLONED != 0 {
		return Route{}, false, nil
	}
	r = Route{Family: data[0], Table: int(data[4]), Protocol: data[5], Scope: data[6], Type: data[7], Flags: flags}
	dstLen := int(data[1])
	it := attrIter{b: data[RtmsgLen:]}
	for typ, val, more := it.next(); more; typ, val, more = it.next() {
		switch typ {
		case unix.RTA_DST:
			r.Dst = prefixOf(val, dstLen)
		case unix.RTA_GATEWAY:
			r.Gw = addrOf(val)
		case unix.RTA_OIF:
			v, _ := u32Of(val)
			r.Oif = int(v)
		case unix.RTA_PRIORITY:
			v, _ := u32Of(val)
			r.Priority = int(v)
		case unix.RTA_TABLE:
			v, _ := u32Of(val)
			r.Table = int(v)
		case rtaNHID:
			r.NHID, _ = u32Of(val)
		}
	}
	if it.err != nil {
		return Route{}, false, fmt.Errorf("route: %w", it.err)
	}
	return r, true, nil
}

// prefixOf decodes RTA_DST with the message's dst_len; invalid when it
// makes no prefix.
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

// DumpNeigh dumps the neighbours of family on ifindex (NDA_IFINDEX
// filter, applied by kernels with strict checking); each gets every
// message's payload.
func (s *Socket) DumpNeigh(family uint8, ifindex int, each func(data []byte) error) error {
	seq := s.begin(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, NdmsgBytes(family, 0))
	s.req = AppendAttrU32(s.req, unix.NDA_IFINDEX, uint32(ifindex))
	return s.dump(seq, each)
}

// DumpFDB dumps the bridge FDB of ifindex (ndm_ifindex filter).
func (s *Socket) DumpFDB(ifindex int, each func(data []byte) error) error {
	seq := s.begin(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, NdmsgBytes(unix.AF_BRIDGE, ifindex))
	return s.dump(seq, each)
}

// DumpRoutes dumps the routes of family in table (rtm_table filter).
func (s *Socket) DumpRoutes(family, table uint8, each func(data []byte) error) error {
	seq := s.begin(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, rtmsgDumpBytes(family, table))
	return s.dump(seq, each)
}

// NdmsgBytes is a struct ndmsg with family and ifindex set.
func NdmsgBytes(family uint8, ifindex int) []byte {
	var h [NdmsgLen]byte
	h[0] = family
	binary.NativeEndian.PutUint32(h[4:], uint32(int32(ifindex)))
	return h[:]
}

func rtmsgDumpBytes(family, table uint8) []byte {
	var h [RtmsgLen]byte
	h[0], h[4] = family, table
	return h[:]
}

// NhmsgLen is sizeof(struct nhmsg).
const NhmsgLen = 8

// Nexthop is a decoded RTM_NEWNEXTHOP.
type Nexthop struct {
	Family uint8
	Flags  uint32
	ID     uint32
	Oif    int
	Gw     netip.Addr
	// Group and Blackhole: not a single gateway nexthop.
	Group, Blackhole bool
}

// ParseNexthop decodes a nexthop message.
func ParseNexthop(data []byte) (Nexthop, error) {
	if len(data) < NhmsgLen {
		return Nexthop{}, fmt.Errorf("nexthop message of %d bytes, want at least %d", len(data), NhmsgLen)
	}
	n := Nexthop{Family: data[0], Flags: binary.NativeEndian.Uint32(data[4:])}
	it := attrIter{b: data[NhmsgLen:]}
	for typ, val, more := it.next(); more; typ, val, more = it.next() {
		switch typ {
		case unix.NHA_ID:
			n.ID, _ = u32Of(val)
		case unix.NHA_OIF:
			v, _ := u32Of(val)
			n.Oif = int(v)
		case unix.NHA_GATEWAY:
			n.Gw = addrOf(val)
		case unix.NHA_GROUP:
			n.Group = true
		case unix.NHA_BLACKHOLE:
			n.Blackhole = true
		}
	}
	if it.err != nil {
		return Nexthop{}, fmt.Errorf("nexthop: %w", it.err)
	}
	return n, nil
}

// DumpNexthops dumps the nexthop objects on ifindex (NHA_OIF filter; 0:
// all).
// Kernels without nexthop objects (before 5.3) fail it with EINVAL or
// EOPNOTSUPP.
func (s *Socket) DumpNexthops(ifindex int, each func(data []byte) error) error {
	var h [NhmsgLen]byte
	seq := s.begin(unix.RTM_GETNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, h[:])
	if ifindex != 0 {
		s.req = AppendAttrU32(s.req, unix.NHA_OIF, uint32(ifindex))
	}
	return s.dump(seq, each)
}
