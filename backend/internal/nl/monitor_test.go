package nl

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMonitorDrain: Drain hands every message of every queued datagram
// to the callback, skips control messages, and returns without blocking
// once the socket is empty; Wait reports whether anything is queued.
func TestMonitorDrain(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	m := &Monitor{fd: fds[0], rbuf: make([]byte, nlRecvBufSize)}

	if ready, err := m.Wait(10 * time.Millisecond); err != nil || ready {
		t.Fatalf("Wait on an empty socket = %v, %v; want false, nil", ready, err)
	}
	neigh := ndmsgMsg(unix.AF_BRIDGE, 5, 0x80, 0x02, attr(unix.NDA_LLADDR, macA))
	route := rtmsgMsg(unix.AF_INET, 24, unix.RT_TABLE_MAIN, 3, 0, 0, attr(unix.RTA_DST, ip4("10.244.1.0")))
	datagrams := [][]byte{
		reply(0, msgSpec{unix.RTM_NEWNEIGH, 0, neigh}, msgSpec{unix.NLMSG_NOOP, 0, nil}, msgSpec{unix.RTM_DELROUTE, 0, route}),
		reply(0, msgSpec{unix.RTM_NEWNEIGH, 0, neigh}),
	}
	for _, d := range datagrams {
		if _, err := unix.Write(fds[1], d); err != nil {
			t.Fatal(err)
		}
	}
	if ready, err := m.Wait(time.Second); err != nil || !ready {
		t.Fatalf("Wait with datagrams queued = %v, %v; want true, nil", ready, err)
	}
	var got []uint16
	lost, err := m.Drain(func(typ uint16, data []byte) {
		got = append(got, typ)
		if len(data) == 0 {
			t.Errorf("message %d has no payload", typ)
		}
	})
	if err != nil || lost {
		t.Fatalf("Drain = %v, %v; want false, nil", lost, err)
	}
	want := []uint16{unix.RTM_NEWNEIGH, unix.RTM_DELROUTE, unix.RTM_NEWNEIGH}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("Drain handed %v, want %v", got, want)
	}
	if lost, err := m.Drain(func(uint16, []byte) { t.Error("message on an empty socket") }); err != nil || lost {
		t.Fatalf("Drain on an empty socket = %v, %v", lost, err)
	}
}

// TestLinkIndexOf reads ifi_index of struct ifinfomsg.
func TestLinkIndexOf(t *testing.T) {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[4] = 7
	for _, tc := range []struct {
		data []byte
		want int
	}{{b, 7}, {b[:8], 0}, {nil, 0}} {
		if got := LinkIndexOf(tc.data); got != tc.want {
			t.Errorf("LinkIndexOf(% x) = %d, want %d", tc.data, got, tc.want)
		}
	}
}
