package nl

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// ack is the kernel's answer to one request: errno 0 is an ACK.
func ack(seq, pid uint32, errno unix.Errno) []byte {
	b := appendNLHeader(nil, unix.NLMSG_ERROR, 0, seq, pid)
	b = binary.NativeEndian.AppendUint32(b, uint32(-int32(errno)))
	b = append(b, make([]byte, nlHeaderLen)...) // the request's header (capped ack)
	finishMsg(b, 0)
	return b
}

func queueThree(b *Batch) {
	b.AddNeigh(unix.AF_INET, 5, netip.MustParseAddr("10.244.1.0"), [6]byte(macA))
	b.AddFDB(5, [6]byte(macA), netip.MustParseAddr("192.0.2.2"))
	b.AddRoute(RouteSpec{Dst: netip.MustParsePrefix("10.244.1.0/24"), Gw: netip.MustParseAddr("10.244.1.0"), Onlink: true, Oif: 5})
}

func TestSendBatchMapsAnswersBySequence(t *testing.T) {
	tests := []struct {
		name    string
		answers func(seqs []uint32, pid uint32) [][]byte
		want    []error
	}{
		{"in order, one datagram", func(s []uint32, pid uint32) [][]byte {
			return [][]byte{append(append(ack(s[0], pid, 0), ack(s[1], pid, unix.EEXIST)...), ack(s[2], pid, 0)...)}
		}, []error{nil, unix.EEXIST, nil}},
		{"out of order with a stale answer", func(s []uint32, pid uint32) [][]byte {
			return [][]byte{ack(s[0]-1, pid, unix.EINVAL), ack(s[2], pid, unix.ENETUNREACH), ack(s[0], pid, 0), ack(s[1], pid, unix.ENOENT)}
		}, []error{nil, unix.ENOENT, unix.ENETUNREACH}},
		{"answers missing: the receive error", func(s []uint32, pid uint32) [][]byte {
			return [][]byte{ack(s[1], pid, 0)}
		}, []error{errClosedPeer, nil, errClosedPeer}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, peer := fakeNLSocket(t)
			s.seq = 40
			var b Batch
			queueThree(&b)
			// The answers can be queued before the requests are sent: the
			// sequence numbers are the socket's next three.
			seqs := []uint32{41, 42, 43}
			for _, d := range tc.answers(seqs, s.pid) {
				if _, err := unix.Write(peer, d); err != nil {
					t.Fatal(err)
				}
			}
			if tc.want[0] == errClosedPeer {
				if err := unix.Shutdown(peer, unix.SHUT_WR); err != nil {
					t.Fatal(err)
				}
			}
			s.SendBatch(&b)
			for i, e := range b.entries {
				if e.seq != seqs[i] {
					t.Errorf("entry %d: seq %d, want %d", i, e.seq, seqs[i])
				}
				switch want := tc.want[i]; {
				case want == errClosedPeer && b.Err(i) == nil, want != errClosedPeer && !errors.Is(b.Err(i), want), want == nil && b.Err(i) != nil:
					t.Errorf("entry %d: err %v, want %v", i, b.Err(i), want)
				}
			}
			checkBatchRequest(t, peer, seqs, s.pid)
		})
	}
}

// errClosedPeer stands for "whatever error the failed receive gave".
var errClosedPeer = errors.New("receive failed")

// checkBatchRequest reads the datagram sent and checks its three
// requests: types, flags, sequence numbers and sender.
func checkBatchRequest(t *testing.T, peer int, seqs []uint32, pid uint32) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Read(peer, buf)
	if err != nil {
		t.Fatal(err)
	}
	msgs, rest := splitMsgs(t, buf[:n], 3)
	types := []uint16{unix.RTM_NEWNEIGH, unix.RTM_NEWNEIGH, unix.RTM_NEWROUTE}
	for i, m := range msgs {
		if m.typ != types[i] || m.seq != seqs[i] || m.pid != pid || m.flags != ReplaceFlags {
			t.Errorf("request %d: %+v", i, m)
		}
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes after the three requests", len(rest))
	}
}

// splitMsgs reads the first n netlink messages of data, failing the test
// if one does not parse, and returns them and what follows.
func splitMsgs(t *testing.T, data []byte, n int) ([]nlMsg, []byte) {
	t.Helper()
	msgs := make([]nlMsg, n)
	for i := range msgs {
		m, rest, err := nextMsg(data)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i], data = m, rest
	}
	return msgs, data
}

// TestBatchEncoding checks the request bodies against hand-built golden
// messages.
func TestBatchEncoding(t *testing.T) {
	var b Batch
	queueThree(&b)
	perm := uint16(0x80) // NUD_PERMANENT
	want := [][]byte{
		ndmsgMsg(unix.AF_INET, 5, perm, 0, attr(unix.NDA_DST, ip4("10.244.1.0")), attr(unix.NDA_LLADDR, macA)),
		ndmsgMsg(unix.AF_BRIDGE, 5, perm, 0x02, attr(unix.NDA_DST, ip4("192.0.2.2")), attr(unix.NDA_LLADDR, macA)),
		rtmsgMsg(unix.AF_INET, 24, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTNH_F_ONLINK,
			attr(unix.RTA_DST, ip4("10.244.1.0")), attr(unix.RTA_GATEWAY, ip4("10.244.1.0")), attrU32(unix.RTA_OIF, 5)),
	}
	msgs, _ := splitMsgs(t, b.buf, len(want))
	for i, m := range msgs {
		if string(m.data) != string(want[i]) {
			t.Errorf("request %d body\n got %x\nwant %x", i, m.data, want[i])
		}
	}
}

// TestBatchRoundTrip decodes each request body the batch builds with the
// dump parsers: the fields written are the fields read.
func TestBatchRoundTrip(t *testing.T) {
	dst := netip.MustParsePrefix("10.244.7.0/24")
	gw := netip.MustParseAddr("10.244.7.0")
	var b Batch
	b.AddNexthop(0xF1000007, gw, 5)
	b.DelNexthop(0xF1000007)
	b.AddRoute(RouteSpec{Dst: dst, NHID: 0xF1000007})
	b.DelRoute(dst, 0)
	b.DelRouteVia(dst, 50, gw, 5, unix.RT_SCOPE_UNIVERSE)
	b.DelNeigh(unix.AF_INET, 5, gw)
	b.DelFDB(5, [6]byte(macA), netip.MustParseAddr("192.0.2.2"))
	types := []uint16{unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP, unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_DELROUTE, unix.RTM_DELNEIGH, unix.RTM_DELNEIGH}
	var bodies [][]byte
	msgs, _ := splitMsgs(t, b.buf, len(types))
	for i, m := range msgs {
		if m.typ != types[i] || m.flags&unix.NLM_F_ACK == 0 {
			t.Errorf("request %d: type %d flags %#x, want type %d with NLM_F_ACK", i, m.typ, m.flags, types[i])
		}
		bodies = append(bodies, m.data)
	}
	if nh, err := ParseNexthop(bodies[0]); err != nil || nh.ID != 0xF1000007 || nh.Oif != 5 || nh.Gw != gw || nh.Flags&unix.RTNH_F_ONLINK == 0 {
		t.Errorf("nexthop add: %+v, %v", nh, err)
	}
	if nh, err := ParseNexthop(bodies[1]); err != nil || nh.ID != 0xF1000007 || nh.Gw.IsValid() {
		t.Errorf("nexthop del: %+v, %v", nh, err)
	}
	if r, ok, err := ParseRoute(bodies[2], unix.AF_INET); err != nil || !ok || r.Dst != dst || r.NHID != 0xF1000007 || r.Gw.IsValid() || r.Oif != 0 {
		t.Errorf("nhid route add: %+v, %v", r, err)
	}
	if r, ok, err := ParseRoute(bodies[3], unix.AF_INET); err != nil || !ok || r.Dst != dst || r.Gw.IsValid() || r.Oif != 0 || r.Scope != unix.RT_SCOPE_NOWHERE {
		t.Errorf("route del by destination: %+v, %v", r, err)
	}
	if r, ok, err := ParseRoute(bodies[4], unix.AF_INET); err != nil || !ok || r.Dst != dst || r.Gw != gw || r.Oif != 5 || r.Priority != 50 {
		t.Errorf("route del via: %+v, %v", r, err)
	}
	all := func(NeighHeader) bool { return true }
	if n, _, err := ParseNeigh(bodies[5], all); err != nil || n.Dst != gw || n.Ifindex != 5 || n.Family != unix.AF_INET {
		t.Errorf("neighbour del: %+v, %v", n, err)
	}
	if n, _, err := ParseNeigh(bodies[6], all); err != nil || n.Family != unix.AF_BRIDGE || string(n.LLAddr) != string(macA) || n.Dst != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("fdb del: %+v, %v", n, err)
	}
}
