package nl

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Golden message builders: the bytes the kernel sends, built by hand.

func ndmsgMsg(family uint8, ifindex int, state uint16, flags uint8, attrs ...[]byte) []byte {
	b := NdmsgBytes(family, ifindex)
	binary.NativeEndian.PutUint16(b[8:], state)
	b[10] = flags
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func rtmsgMsg(family, dstLen, table, protocol, scope uint8, flags uint32, attrs ...[]byte) []byte {
	b := make([]byte, RtmsgLen)
	b[0], b[1], b[4], b[5], b[6], b[7] = family, dstLen, table, protocol, scope, unix.RTN_UNICAST
	binary.NativeEndian.PutUint32(b[8:], flags)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func attr(typ uint16, val []byte) []byte  { return AppendAttr(nil, typ, val) }
func attrU32(typ uint16, v uint32) []byte { return AppendAttrU32(nil, typ, v) }
func ip4(s string) []byte {
	a := netip.MustParseAddr(s).As4()
	return a[:]
}

var macA = []byte{0x0e, 0, 0, 0, 0, 0x0a}

// fakeNLSocket is an Socket on one end of a seqpacket socketpair: the
// test reads the request from the other end and writes the replies.
func fakeNLSocket(t *testing.T) (*Socket, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return &Socket{fd: fds[0], pid: 77, rbuf: make([]byte, nlRecvBufSize)}, fds[1]
}

// reply builds one datagram of messages for seq.
func reply(seq uint32, msgs ...struct {
	typ, flags uint16
	data       []byte
}) []byte {
	var b []byte
	for _, m := range msgs {
		off := len(b)
		b = appendNLHeader(b, m.typ, m.flags, seq, 77)
		b = append(b, m.data...)
		finishMsg(b, off)
	}
	return b
}

type msgSpec = struct {
	typ, flags uint16
	data       []byte
}

func errPayload(errno unix.Errno) []byte {
	b := make([]byte, 4+nlHeaderLen)
	binary.NativeEndian.PutUint32(b, uint32(-int32(errno)))
	return b
}

func TestNLSocketDump(t *testing.T) {
	neigh := func(ip string) []byte {
		return ndmsgMsg(unix.AF_INET, 5, netlink.NUD_PERMANENT, 0, attr(unix.NDA_DST, ip4(ip)), attr(unix.NDA_LLADDR, macA))
	}
	multi := uint16(unix.NLM_F_MULTI)
	tests := []struct {
		name      string
		datagrams func(seq uint32) [][]byte
		wantN     int
		wantErr   error
	}{
		{"multi-part over two datagrams", func(seq uint32) [][]byte {
			return [][]byte{
				reply(seq, msgSpec{unix.RTM_NEWNEIGH, multi, neigh("10.244.1.0")}, msgSpec{unix.RTM_NEWNEIGH, multi, neigh("10.244.2.0")}),
				reply(seq, msgSpec{unix.RTM_NEWNEIGH, multi, neigh("10.244.3.0")}, msgSpec{unix.NLMSG_DONE, multi, make([]byte, 4)}),
			}
		}, 3, nil},
		{"stale reply of an earlier request skipped", func(seq uint32) [][]byte {
			return [][]byte{
				reply(seq-1, msgSpec{unix.RTM_NEWNEIGH, multi, neigh("10.244.9.0")}, msgSpec{unix.NLMSG_DONE, multi, make([]byte, 4)}),
				reply(seq, msgSpec{unix.RTM_NEWNEIGH, multi, neigh("10.244.1.0")}, msgSpec{unix.NLMSG_DONE, multi, make([]byte, 4)}),
			}
		}, 1, nil},
		{"interrupted", func(seq uint32) [][]byte {
			return [][]byte{reply(seq, msgSpec{unix.RTM_NEWNEIGH, multi | unix.NLM_F_DUMP_INTR, neigh("10.244.1.0")},
				msgSpec{unix.NLMSG_DONE, multi | unix.NLM_F_DUMP_INTR, make([]byte, 4)})}
		}, 1, netlink.ErrDumpInterrupted},
		{"error reply", func(seq uint32) [][]byte {
			return [][]byte{reply(seq, msgSpec{unix.NLMSG_ERROR, 0, errPayload(unix.EINVAL)})}
		}, 0, unix.EINVAL},
		{"error in done", func(seq uint32) [][]byte {
			return [][]byte{reply(seq, msgSpec{unix.NLMSG_DONE, multi, errPayload(unix.ENOBUFS)[:4]})}
		}, 0, unix.ENOBUFS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := fakeNLSocket(t)
			s.seq = 10
			seq := s.begin(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, NdmsgBytes(unix.AF_INET, 0))
			s.req = AppendAttrU32(s.req, unix.NDA_IFINDEX, 5)
			for _, d := range tc.datagrams(seq) {
				if _, err := unix.Write(peer, d); err != nil {
					t.Fatal(err)
				}
			}
			got := 0
			err := s.dump(seq, func(data []byte) error {
				_, ok, err := ParseNeigh(data, func(h NeighHeader) bool { return h.Ifindex == 5 })
				if ok {
					got++
				}
				return err
			})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("dump error %v, want %v", err, tc.wantErr)
			}
			if got != tc.wantN {
				t.Fatalf("%d neighbours, want %d", got, tc.wantN)
			}
			req := make([]byte, 256)
			n, err := unix.Read(peer, req)
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := nextMsg(req[:n])
			if err != nil || m.typ != unix.RTM_GETNEIGH || m.seq != seq || m.flags != unix.NLM_F_REQUEST|unix.NLM_F_DUMP ||
				len(m.data) != NdmsgLen+8 || int(binary.NativeEndian.Uint32(req[nlHeaderLen+NdmsgLen+4:])) != 5 {
				t.Fatalf("request %x: %+v, %v", req[:n], m, err)
			}
		})
	}
}
