package nl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Groups are the rtnetlink multicast groups a reconciler listens to:
// links (its device coming and going), neighbours and FDB entries
// (RTNLGRP_NEIGH carries both), the routes of both families and nexthop
// objects.
var Groups = []uint32{unix.RTNLGRP_LINK, unix.RTNLGRP_NEIGH, unix.RTNLGRP_IPV4_ROUTE,
	unix.RTNLGRP_IPV6_ROUTE, unix.RTNLGRP_NEXTHOP}

// DefaultMonitorBuffer is the receive buffer asked for a Monitor. Every
// queued notification costs its skb's truesize (about 1 KiB), so this
// holds a few thousand: enough for drift and for the echoes of an
// incremental pass, not for a full pass's echoes, which overflow it (the
// owner then dumps once, which is what it would do anyway).
const DefaultMonitorBuffer = 4 << 20

// Monitor is a NETLINK_ROUTE socket subscribed to multicast groups. It is
// read without blocking (Drain) by the one goroutine that owns what the
// notifications update; Wait lets another goroutine sleep until something
// is queued.
type Monitor struct {
	fd   int
	rbuf []byte
}

// OpenMonitor subscribes to groups in ns (netns.None(): the current
// namespace) with a receive buffer of rcvbuf bytes (0:
// DefaultMonitorBuffer; the kernel doubles it and, without
// CAP_NET_ADMIN, caps it at net.core.rmem_max).
func OpenMonitor(ns netns.NsHandle, groups []uint32, rcvbuf int) (*Monitor, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink monitor socket: %w", err)
	}
	m := &Monitor{fd: fd, rbuf: make([]byte, nlRecvBufSize)}
	if err := m.setup(groups, rcvbuf); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return m, nil
}

func (m *Monitor) setup(groups []uint32, rcvbuf int) error {
	if rcvbuf <= 0 {
		rcvbuf = DefaultMonitorBuffer
	}
	if err := unix.SetsockoptInt(m.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(m.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fmt.Errorf("netlink monitor receive buffer %d bytes: %w", rcvbuf, err)
		}
	}
	if err := unix.Bind(m.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink monitor socket: %w", err)
	}
	for _, g := range groups {
		if err := unix.SetsockoptInt(m.fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(g)); err != nil {
			return fmt.Errorf("join rtnetlink group %d: %w", g, err)
		}
	}
	return nil
}

// Close closes the socket. No Wait or Drain may run or follow.
func (m *Monitor) Close() error { return unix.Close(m.fd) }

// Wait blocks until a notification (or an overflow) is queued or timeout
// passes; it reports whether one is.
func (m *Monitor) Wait(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(m.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false, fmt.Errorf("poll netlink monitor: %w", err)
		}
		return n > 0, nil
	}
}

// Drain hands every queued notification to each (the message type and
// its payload, which aliases the receive buffer and is valid only during
// the call) without blocking. lost reports that the kernel dropped
// notifications since the last Drain (ENOBUFS: the receive buffer
// overflowed); the owner must then read the tables again. Reading goes on
// after an overflow, so that the socket is empty when Drain returns.
func (m *Monitor) Drain(each func(typ uint16, data []byte)) (lost bool, err error) {
	for {
		n, _, err := unix.Recvfrom(m.fd, m.rbuf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return lost, nil
		case errors.Is(err, unix.ENOBUFS):
			lost = true
			continue
		case err != nil:
			return lost, fmt.Errorf("netlink monitor receive: %w", err)
		case n > len(m.rbuf):
			// A truncated datagram lost notifications too.
			lost = true
			continue
		}
		if err := splitNotifications(m.rbuf[:n], each); err != nil {
			return true, err
		}
	}
}

// splitNotifications hands each message of a notification datagram to
// each.
func splitNotifications(b []byte, each func(typ uint16, data []byte)) error {
	for len(b) > 0 {
		msg, rest, err := nextMsg(b)
		if err != nil {
			return fmt.Errorf("netlink notification: %w", err)
		}
		b = rest
		switch msg.typ {
		case unix.NLMSG_NOOP, unix.NLMSG_DONE, unix.NLMSG_ERROR, unix.NLMSG_OVERRUN:
			continue
		}
		each(msg.typ, msg.data)
	}
	return nil
}

// LinkIndexOf returns the interface index of an RTM_NEWLINK or
// RTM_DELLINK payload (struct ifinfomsg), 0 if it is too short.
func LinkIndexOf(data []byte) int {
	if len(data) < unix.SizeofIfInfomsg {
		return 0
	}
	return int(int32(binary.NativeEndian.Uint32(data[4:])))
}

// LinkUp reports IFF_UP in the ifi_flags of a link payload.
func LinkUp(data []byte) bool {
	return len(data) >= unix.SizeofIfInfomsg && binary.NativeEndian.Uint32(data[8:])&unix.IFF_UP != 0
}

// IgnorePorts attaches a socket filter that drops, in the kernel, every
// notification whose nlmsg_pid is one of ports: the kernel sets it to the
// port id of the socket whose request caused the change (neighbours,
// routes, nexthop objects; not VXLAN FDB entries, whose notifications
// carry 0). The echoes of the owner's own writes then cost neither a
// queued skb nor a read. ports must not contain 0.
func (m *Monitor) IgnorePorts(ports ...uint32) error {
	// A classic BPF absolute load reads the word big-endian: compare with
	// the native-endian pid as such a load sees it.
	var prog []unix.SockFilter
	prog = append(prog, unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 12})
	for i, p := range ports {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], p)
		// Jump to the drop at the end when equal, else go on.
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			K: binary.BigEndian.Uint32(b[:]), Jt: uint8(len(ports) - i), Jf: 0})
	}
	prog = append(prog,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // accept
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0})          // drop
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(m.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("netlink monitor filter of ports %v: %w", ports, err)
	}
	return nil
}

// Port is the socket's netlink port id (nlmsg_pid of its requests).
func (s *Socket) Port() uint32 { return s.pid }
