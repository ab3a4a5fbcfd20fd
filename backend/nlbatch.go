package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// batchSender is a Kernel that can send many replace requests in one
// datagram (NetlinkKernel). A full pass queues its adds of one kind into
// a writeBatch and sends it every maxBatch entries and at the end of the
// kind, so per peer neighbours still go before FDB entries and those
// before routes.
type batchSender interface {
	sendBatch(b *writeBatch)
}

// maxBatch bounds a batch: 64 ACKs stay far below the default socket
// receive buffer, and 64 requests fit in a few KiB.
const maxBatch = 64

// batchedWrite is one queued request and, after sendBatch, its outcome.
type batchedWrite struct {
	kind    entryKind
	present bool // the key was in believed state when queued
	ip      netip.Addr
	mac     [6]byte
	route   routeKey
	link    int
	seq     uint32
	off     int // of the request's header in writeBatch.buf
	err     error
}

// writeBatch is the requests of a batch, encoded back to back in buf with
// sequence numbers filled in by sendBatch.
type writeBatch struct {
	buf     []byte
	entries []batchedWrite
}

func (b *writeBatch) len() int { return len(b.entries) }

func (b *writeBatch) reset() {
	b.buf = b.buf[:0]
	clear(b.entries)
	b.entries = b.entries[:0]
}

// begin opens a request for e; the caller appends its body and attributes.
func (b *writeBatch) begin(e batchedWrite, typ, flags uint16) {
	e.off = len(b.buf)
	b.entries = append(b.entries, e)
	b.buf = appendNLHeader(b.buf, typ, flags, 0, 0)
}

func (b *writeBatch) end() { finishMsg(b.buf, b.entries[len(b.entries)-1].off) }

const replaceFlags = unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_REPLACE

// addNeigh queues `ip neigh replace <ip> lladdr <mac> dev <link> nud
// permanent`, the message NeighSet sends for writeScratch.neigh.
func (b *writeBatch) addNeigh(o ownership, ip netip.Addr, mac [6]byte, present bool) {
	b.begin(batchedWrite{kind: kindNeigh, present: present, ip: ip, link: o.link}, unix.RTM_NEWNEIGH, replaceFlags)
	b.buf = appendNdmsg(b.buf, uint8(o.family), o.link, netlink.NUD_PERMANENT, 0)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, ip)
	b.buf = appendAttr(b.buf, unix.NDA_LLADDR, mac[:])
	b.end()
}

// addFDB queues `bridge fdb replace <mac> dev <link> dst <dst> self
// permanent`, the message of writeScratch.fdb.
func (b *writeBatch) addFDB(link int, mac [6]byte, dst netip.Addr, present bool) {
	b.begin(batchedWrite{kind: kindFDB, present: present, mac: mac, ip: dst, link: link}, unix.RTM_NEWNEIGH, replaceFlags)
	b.buf = appendNdmsg(b.buf, unix.AF_BRIDGE, link, netlink.NUD_PERMANENT, netlink.NTF_SELF)
	b.buf = appendAddrAttr(b.buf, unix.NDA_DST, dst)
	b.buf = appendAttr(b.buf, unix.NDA_LLADDR, mac[:])
	b.end()
}

// addRoute queues `ip route replace <dst> via <gw> dev <link> [onlink]`
// in the main table, protocol boot, scope universe, the message
// RouteReplace sends for writeScratch.route.
func (b *writeBatch) addRoute(key routeKey, link int, gw netip.Addr, onlink, present bool) {
	b.begin(batchedWrite{kind: kindRoute, present: present, route: key, ip: gw, link: link}, unix.RTM_NEWROUTE, replaceFlags)
	var flags uint32
	if onlink {
		flags = unix.RTNH_F_ONLINK
	}
	family := uint8(unix.AF_INET)
	if key.dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	var h [rtmsgLen]byte
	h[0], h[1], h[4], h[5], h[6], h[7] = family, uint8(key.dst.Bits()), unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST
	binary.NativeEndian.PutUint32(h[8:], flags)
	b.buf = append(b.buf, h[:]...)
	b.buf = appendAddrAttr(b.buf, unix.RTA_DST, key.dst.Addr())
	if gw.IsValid() {
		b.buf = appendAddrAttr(b.buf, unix.RTA_GATEWAY, gw)
	}
	if key.priority > 0 {
		b.buf = appendAttrU32(b.buf, unix.RTA_PRIORITY, uint32(key.priority))
	}
	b.buf = appendAttrU32(b.buf, unix.RTA_OIF, uint32(link))
	b.end()
}

// appendAddrAttr appends an address attribute (4 or 16 bytes) without
// allocating.
func appendAddrAttr(b []byte, typ uint16, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return appendAttr(b, typ, v[:])
	}
	v := a.As16()
	return appendAttr(b, typ, v[:])
}

func appendNdmsg(b []byte, family uint8, ifindex int, state uint16, flags uint8) []byte {
	var h [ndmsgLen]byte
	h[0] = family
	binary.NativeEndian.PutUint32(h[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint16(h[8:], state)
	h[10] = flags
	return append(b, h[:]...)
}

// sendBatchOn numbers the requests of b, sends them in one datagram and
// reads one ACK or error per request, matched by sequence number. A
// request that gets no answer (the receive failed) fails with that error;
// its late ACK, if any, is skipped by the next exchange.
func sendBatchOn(s *nlSocket, b *writeBatch) {
	if b.len() == 0 {
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
		b.failAll(fmt.Errorf("netlink send batch of %d: %w", b.len(), err))
		return
	}
	for left := b.len(); left > 0; {
		data, err := s.recv()
		if err != nil {
			b.failAll(err)
			return
		}
		left -= b.takeAcks(data, s.pid, first)
	}
}

// errNoAnswer marks a request whose ACK has not been read yet.
var errNoAnswer = errors.New("no netlink answer")

func (b *writeBatch) failAll(err error) {
	for i := range b.entries {
		if b.entries[i].err == errNoAnswer {
			b.entries[i].err = err
		}
	}
}

// takeAcks records the answers in one datagram and returns how many
// requests they settled.
func (b *writeBatch) takeAcks(data []byte, pid, first uint32) int {
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

func (b *writeBatch) index(seq, first uint32) int {
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
