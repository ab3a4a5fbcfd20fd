package nl

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Payloads of notifications as the kernel sends them, for fakes of the
// kernel (backendtest) to report their changes in the wire format the
// reconciler reads.

// NeighPayload is an RTM_NEWNEIGH/RTM_DELNEIGH payload: a neighbour
// (family AF_INET or AF_INET6; dst its address) or an FDB entry
// (AF_BRIDGE; dst the remote). lladdr may be nil.
func NeighPayload(family uint8, ifindex int, state uint16, flags uint8, dst netip.Addr, lladdr []byte) []byte {
	b := appendNdmsg(nil, family, ifindex, state, flags)
	if dst.IsValid() {
		b = appendAddrAttr(b, unix.NDA_DST, dst)
	}
	if lladdr != nil {
		b = AppendAttr(b, unix.NDA_LLADDR, lladdr)
	}
	return b
}

// RoutePayload is an RTM_NEWROUTE/RTM_DELROUTE payload of r in table
// (RTA_TABLE too, as the kernel sends it) with the given scope.
func RoutePayload(r RouteSpec, table int, scope uint8) []byte {
	var b Batch
	b.appendRoute(r)
	if table < 256 {
		b.buf[4] = uint8(table)
	} else {
		b.buf[4] = unix.RT_TABLE_COMPAT
	}
	b.buf[6] = scope
	return AppendAttrU32(b.buf, unix.RTA_TABLE, uint32(table))
}

// LinkPayload is an RTM_NEWLINK/RTM_DELLINK payload naming the link and
// whether it is up (struct ifinfomsg only).
func LinkPayload(index int, up bool) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(index)))
	if up {
		binary.NativeEndian.PutUint32(b[8:], unix.IFF_UP)
	}
	return b
}
