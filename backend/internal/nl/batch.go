package nl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Kernel constants not in x/sys/unix.
const (
	nudPermanent = 0x80 // NUD_PERMANENT
	ntfSelf      = 0x02 // NTF_SELF
)

// batchedWrite is one queued request and, after SendBatch, its outcome.
type batchedWrite struct {
	seq uint32
	off int // of the request's header in Batch.buf
	err error
}

// Batch is write requests encoded back to back, sent in one datagram by
// Socket.SendBatch; request i's outcome is Err(i). The caller keeps what
// each request was for, by index.
type Batch struct {
	buf     []byte
	entries []batchedWrite
}

// Len is the number of queued requests.
func (b *Batch) Len() int { return len(b.entries) }

// Err is the outcome of request i after SendBatch (nil: acknowledged).
func (b *Batch) Err(i int) error { return b.entries[i].err }

// Reset empties the batch, keeping its storage.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	clear(b.entries)
	b.entries = b.entries[:0]
}

// begin opens a request; the caller appends its body and attributes.
func (b *Batch) begin(typ, flags uint16) {
	b.entries = append(b.entries, batchedWrite{off: len(b.buf)})
	b.buf = appendNLHeader(b.buf, typ, flags, 0, 0)
}

func (b *Batch) end() { finishMsg(b.buf, b.entries[len(b.entries)-1].off) }

// ReplaceFlags are the flags of a replace request (`ip ... replace`).
const ReplaceFlags = unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_REPLACE

// AddNeigh queues `ip neigh replace <ip> lladdr <mac> dev <ifindex> nud
// permanent`, the message vishvananda/netlink's NeighSet sends.
func (b *Batch) AddNeigh(family uint8, ifindex int, ip netip.Addr, mac [6]byte) {
	b.begin(unix.RTM_NEWNEIGH, ReplaceFlags)
	b.buf = appendNdmsg(b.buf, family, ifindex, nudPermanent, 0)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, ip)
	b.buf = AppendAttr(b.buf, unix.NDA_LLADDR, mac[:])
	b.end()
}

// AddFDB queues `bridge fdb replace <mac> dev <ifindex> dst <dst> self
// permanent`.
func (b *Batch) AddFDB(ifindex int, mac [6]byte, dst netip.Addr) {
	b.begin(unix.RTM_NEWNEIGH, ReplaceFlags)
	b.buf = appendNdmsg(b.buf, unix.AF_BRIDGE, ifindex, nudPermanent, ntfSelf)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, dst)
	b.buf = AppendAttr(b.buf, unix.NDA_LLADDR, mac[:])
	b.end()
}

// RouteSpec is one main-table route as overlayd writes it: protocol boot,
// scope universe, unicast.
type RouteSpec struct {
	Dst netip.Prefix
	// Gw and Onlink, or NHID (a nexthop object holds gateway and device).
	Gw       netip.Addr
	Onlink   bool
	NHID     uint32
	Oif      int
	Priority int
}

// AddRoute queues `ip route replace <dst> via <gw> dev <oif> [onlink]`
// (or `ip route replace <dst> nhid <id>`) in the main table, the message
// RouteReplace sends.
func (b *Batch) AddRoute(r RouteSpec) {
	b.begin(unix.RTM_NEWROUTE, ReplaceFlags)
	b.appendRoute(r)
	b.end()
}

func (b *Batch) appendRoute(r RouteSpec) {
	var flags uint32
	if r.Onlink {
		flags = unix.RTNH_F_ONLINK
	}
	family := uint8(unix.AF_INET)
	if r.Dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	var h [RtmsgLen]byte
	h[0], h[1], h[4], h[5], h[6], h[7] = family, uint8(r.Dst.Bits()), unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST
	binary.NativeEndian.PutUint32(h[8:], flags)
	b.buf = append(b.buf, h[:]...)
	b.buf = appendAddrAttr(b.buf, unix.RTA_DST, r.Dst.Addr())
	if r.Gw.IsValid() {
		b.buf = appendAddrAttr(b.buf, unix.RTA_GATEWAY, r.Gw)
	}
	if r.Priority > 0 {
		b.buf = AppendAttrU32(b.buf, unix.RTA_PRIORITY, uint32(r.Priority))
	}
	if r.NHID != 0 {
		b.buf = AppendAttrU32(b.buf, rtaNHID, r.NHID)
	}
	if r.Oif != 0 {
		b.buf = AppendAttrU32(b.buf, unix.RTA_OIF, uint32(r.Oif))
	}
}

// appendAddrAttr appends an address attribute (4 or 16 bytes) without
// allocating.
func appendAddrAttr(b []byte, typ uint16, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return AppendAttr(b, typ, v[:])
	}
	v := a.As16()
	return AppendAttr(b, typ, v[:])
}

func appendNdmsg(b []byte, family uint8, ifindex int, state uint16, flags uint8) []byte {
	var h [NdmsgLen]byte
	h[0] = family
	binary.NativeEndian.PutUint32(h[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint16(h[8:], state)
	h[10] = flags
	return append(b, h[:]...)
}

// SendBatch numbers the requests of b, sends them in one datagram and
// reads one ACK or error per request, matched by sequence number. A
// request that gets no answer (the receive failed) fails with that error;
// its late ACK, if any, is skipped by the next exchange.
func (s *Socket) SendBatch(b *Batch) {
	if b.Len() == 0 {
		return
	}
	for i := range b.entries {
		e := &b.entries[i]
		e.seq = s.nextSeq()
		binary.NativeEndian.PutUint32(b.buf[e.off+8:], e.seq)
		binary.NativeEndian.PutUint32(b.buf[e.off+12:], s.pid)
		e.err = errNoAnswer
	}
	first := b.entries[0].seq
	if err := s.send(b.buf); err != nil {
		b.FailAll(fmt.Errorf("netlink send batch of %d: %w", b.Len(), err))
		return
	}
	for left := b.Len(); left > 0; {
		data, err := s.recv()
		if err != nil {
			b.FailAll(err)
			return
		}
		left -= b.takeAcks(data, s.pid, first)
	}
}

// errNoAnswer marks a request whose ACK has not been read yet.
var errNoAnswer = errors.New("no netlink answer")

// FailAll fails every request not answered yet (or not sent) with err.
func (b *Batch) FailAll(err error) {
	for i := range b.entries {
		if e := &b.entries[i]; e.err == errNoAnswer || e.seq == 0 {
			e.err = err
		}
	}
}

// takeAcks records the answers in one datagram and returns how many
// requests they settled.
func (b *Batch) takeAcks(data []byte, pid, first uint32) int {
	settled := 0
	for len(data) > 0 {
		m, rest, err := nextMsg(data)
		if err != nil {
			return settled
		}
		data = rest
		if m.typ != unix.NLMSG_ERROR || m.pid != pid {
			continue
		}
		i := b.index(m.seq, first)
		if i < 0 || b.entries[i].err != errNoAnswer {
			continue
		}
		b.entries[i].err = errnoOf(m.data)
		settled++
	}
	return settled
}

func (b *Batch) index(seq, first uint32) int {
	if i := int(seq - first); seq-first < uint32(len(b.entries)) && b.entries[i].seq == seq {
		return i
	}
	for i := range b.entries {
		if b.entries[i].seq == seq {
			return i
		}
	}
	return -1
}

// AddNexthop queues `ip nexthop replace id <id> via <gw> dev <oif>
// onlink`, protocol boot.
func (b *Batch) AddNexthop(id uint32, gw netip.Addr, oif int) {
	b.begin(unix.RTM_NEWNEXTHOP, ReplaceFlags)
	b.buf = appendNhmsg(b.buf, gw, unix.RTNH_F_ONLINK)
	b.buf = AppendAttrU32(b.buf, unix.NHA_ID, id)
	b.buf = AppendAttrU32(b.buf, unix.NHA_OIF, uint32(oif))
	b.buf = appendAddrAttr(b.buf, unix.NHA_GATEWAY, gw)
	b.end()
}

// DelNexthop queues `ip nexthop del id <id>`. The kernel removes the
// routes that use the nexthop with it.
func (b *Batch) DelNexthop(id uint32) {
	b.begin(unix.RTM_DELNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b.buf = appendNhmsg(b.buf, netip.Addr{}, 0)
	b.buf = AppendAttrU32(b.buf, unix.NHA_ID, id)
	b.end()
}

// DelRoute queues `ip route del <dst> [metric <priority>]` in the main
// table: no gateway nor device, so the first route to dst of that metric
// goes, whatever it points at.
func (b *Batch) DelRoute(dst netip.Prefix, priority int) {
	b.begin(unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	family := uint8(unix.AF_INET)
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	var h [RtmsgLen]byte
	h[0], h[1], h[4], h[6] = family, uint8(dst.Bits()), unix.RT_TABLE_MAIN, unix.RT_SCOPE_NOWHERE
	b.buf = append(b.buf, h[:]...)
	b.buf = appendAddrAttr(b.buf, unix.RTA_DST, dst.Addr())
	if priority > 0 {
		b.buf = AppendAttrU32(b.buf, unix.RTA_PRIORITY, uint32(priority))
	}
	b.end()
}

func appendNhmsg(b []byte, gw netip.Addr, flags uint32) []byte {
	var h [NhmsgLen]byte
	switch {
	case gw.Is4():
		h[0] = unix.AF_INET
	case gw.Is6():
		h[0] = unix.AF_INET6
	}
	if gw.IsValid() {
		h[2] = unix.RTPROT_BOOT
	}
	binary.NativeEndian.PutUint32(h[4:], flags)
	return append(b, h[:]...)
}

// DelNeigh queues `ip neigh del <ip> dev <ifindex>`.
func (b *Batch) DelNeigh(family uint8, ifindex int, ip netip.Addr) {
	b.begin(unix.RTM_DELNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b.buf = appendNdmsg(b.buf, family, ifindex, 0, 0)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, ip)
	b.end()
}

// DelFDB queues `bridge fdb del <mac> dev <ifindex> dst <dst> self`; the
// VXLAN driver wants the destination.
func (b *Batch) DelFDB(ifindex int, mac [6]byte, dst netip.Addr) {
	b.begin(unix.RTM_DELNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b.buf = appendNdmsg(b.buf, unix.AF_BRIDGE, ifindex, 0, ntfSelf)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, dst)
	b.buf = AppendAttr(b.buf, unix.NDA_LLADDR, mac[:])
	b.end()
}

// DelRouteVia queues `ip route del <dst> via <gw> dev <oif> [metric
// <priority>] scope <scope>` in the main table: the route that exactly.
func (b *Batch) DelRouteVia(dst netip.Prefix, priority int, gw netip.Addr, oif int, scope uint8) {
	b.begin(unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	family := uint8(unix.AF_INET)
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	var h [RtmsgLen]byte
	h[0], h[1], h[4], h[6] = family, uint8(dst.Bits()), unix.RT_TABLE_MAIN, scope
	b.buf = append(b.buf, h[:]...)
	b.buf = appendAddrAttr(b.buf, unix.RTA_DST, dst.Addr())
	if gw.IsValid() {
		b.buf = appendAddrAttr(b.buf, unix.RTA_GATEWAY, gw)
	}
	if priority > 0 {
		b.buf = AppendAttrU32(b.buf, unix.RTA_PRIORITY, uint32(priority))
	}
	if oif != 0 {
		b.buf = AppendAttrU32(b.buf, unix.RTA_OIF, uint32(oif))
	}
	b.end()
}
