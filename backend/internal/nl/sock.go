package nl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nlHeaderLen is sizeof(struct nlmsghdr).
const nlHeaderLen = unix.SizeofNlMsghdr

// nlRecvBufSize is the receive buffer: a dump datagram never exceeds
// 32 KiB (the kernel caps its dump skb there), an ACK is far smaller.
const nlRecvBufSize = 64 << 10

// Socket is a blocking NETLINK_ROUTE socket that reuses one receive
// buffer: reads and writes go straight through read(2)/write(2), without
// the Go netpoller and without allocating per message.
type Socket struct {
	fd   int
	pid  uint32
	seq  uint32
	rbuf []byte
	req  []byte
}

// Open opens the socket in ns (netns.None(): the current
// namespace), with strict checking of dump requests where the kernel has
// it (4.20+), so that dumps are filtered in the kernel.
func Open(ns netns.NsHandle) (*Socket, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink route socket: %w", err)
	}
	s := &Socket{fd: fd, rbuf: make([]byte, nlRecvBufSize)}
	if err := s.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (s *Socket) setup() error {
	if err := unix.Bind(s.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink route socket: %w", err)
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return fmt.Errorf("netlink route socket name: %w", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return fmt.Errorf("netlink route socket name: unexpected %T", sa)
	}
	s.pid = nsa.Pid
	// Without strict checking (kernels before 4.20) dumps are filtered
	// here instead; every parser checks the link and table itself.
	_ = unix.SetsockoptInt(s.fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	// Error answers to batched writes carry only the request's header.
	_ = unix.SetsockoptInt(s.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	// A kernel that never answers must not hang the reconciler forever.
	tv := unix.Timeval{Sec: 30}
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink route socket receive timeout: %w", err)
	}
	return nil
}

// socketIn creates the socket on a thread moved into ns.
func socketIn(ns netns.NsHandle) (int, error) {
	if !ns.IsOpen() {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		return -1, fmt.Errorf("current namespace: %w", err)
	}
	defer cur.Close()
	if err := netns.Set(ns); err != nil {
		return -1, fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if back := netns.Set(cur); back != nil {
		// The thread stays locked and dies with the goroutine: never
		// reused in the wrong namespace.
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("return to namespace %s: %w", cur, back)
	}
	return fd, err
}

// Close closes the socket.
func (s *Socket) Close() error { return unix.Close(s.fd) }

func (s *Socket) nextSeq() uint32 {
	s.seq++
	if s.seq == 0 {
		s.seq = 1
	}
	return s.seq
}

// begin starts a request of type typ with flags in the request buffer
// followed by the fixed header hdr (ndmsg, rtmsg); it returns the sequence
// number. Attributes may be appended with putAttr before finish.
func (s *Socket) begin(typ, flags uint16, hdr []byte) uint32 {
	seq := s.nextSeq()
	s.req = appendNLHeader(s.req[:0], typ, flags, seq, s.pid)
	s.req = append(s.req, hdr...)
	return seq
}

func appendNLHeader(b []byte, typ, flags uint16, seq, pid uint32) []byte {
	var h [nlHeaderLen]byte
	ne := binary.NativeEndian
	ne.PutUint16(h[4:], typ)
	ne.PutUint16(h[6:], flags)
	ne.PutUint32(h[8:], seq)
	ne.PutUint32(h[12:], pid)
	return append(b, h[:]...)
}

// finishMsg writes the length of the message starting at off into its
// header.
func finishMsg(b []byte, off int) {
	binary.NativeEndian.PutUint32(b[off:], uint32(len(b)-off))
}

// AppendAttr appends one rtattr, padded to 4 bytes.
func AppendAttr(b []byte, typ uint16, val []byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func AppendAttrU32(b []byte, typ uint16, v uint32) []byte {
	var val [4]byte
	binary.NativeEndian.PutUint32(val[:], v)
	return AppendAttr(b, typ, val[:])
}

// send writes the whole request buffer in one datagram.
func (s *Socket) send(b []byte) error {
	for {
		// write(2) on an unconnected netlink socket goes to the kernel.
		n, err := unix.Write(s.fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err == nil && n != len(b):
			return fmt.Errorf("netlink send: wrote %d of %d bytes", n, len(b))
		}
		return err
	}
}

// recv reads one datagram into the receive buffer.
func (s *Socket) recv() ([]byte, error) {
	for {
		n, _, err := unix.Recvfrom(s.fd, s.rbuf, unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, fmt.Errorf("netlink receive: %w", err)
		case n == 0:
			return nil, fmt.Errorf("netlink receive: empty datagram")
		case n > len(s.rbuf):
			return nil, fmt.Errorf("netlink receive: datagram of %d bytes truncated to %d", n, len(s.rbuf))
		}
		return s.rbuf[:n], nil
	}
}

// nlMsg is one message of a datagram; data aliases the receive buffer.
type nlMsg struct {
	typ, flags uint16
	seq, pid   uint32
	data       []byte
}

// nextMsg splits the first message off b.
func nextMsg(b []byte) (m nlMsg, rest []byte, err error) {
	if len(b) < nlHeaderLen {
		return nlMsg{}, nil, fmt.Errorf("netlink message header: %d bytes left", len(b))
	}
	ne := binary.NativeEndian
	l := int(ne.Uint32(b[0:]))
	if l < nlHeaderLen || l > len(b) {
		return nlMsg{}, nil, fmt.Errorf("netlink message length %d with %d bytes left", l, len(b))
	}
	m = nlMsg{typ: ne.Uint16(b[4:]), flags: ne.Uint16(b[6:]), seq: ne.Uint32(b[8:]), pid: ne.Uint32(b[12:]), data: b[nlHeaderLen:l]}
	aligned := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
	if aligned > len(b) {
		aligned = len(b)
	}
	return m, b[aligned:], nil
}

// errnoOf decodes the error code of an NLMSG_ERROR or NLMSG_DONE payload:
// nil for 0 (an ACK, a clean end of dump).
func errnoOf(data []byte) error {
	if len(data) < 4 {
		return nil
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code == 0 {
		return nil
	}
	return syscall.Errno(-code)
}

// dump sends the request in s.req (a dump request begun with begin) and
// hands every reply message of its sequence number to each, until
// NLMSG_DONE. It reads to the end even after an error of each or an
// NLM_F_DUMP_INTR flag, so the socket is left clean for the next request;
// an interrupted dump returns netlink.ErrDumpInterrupted.
func (s *Socket) dump(seq uint32, each func(data []byte) error) error {
	finishMsg(s.req, 0)
	if err := s.send(s.req); err != nil {
		return fmt.Errorf("netlink send dump request: %w", err)
	}
	var firstErr error
	intr := false
	for {
		b, err := s.recv()
		if err != nil {
			return err
		}
		for len(b) > 0 {
			m, rest, err := nextMsg(b)
			if err != nil {
				return err
			}
			b = rest
			if m.seq != seq || m.pid != s.pid {
				continue // a late reply to an earlier request
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				return firstNonNil(firstErr, errnoOf(m.data), intrErr(intr))
			case unix.NLMSG_ERROR:
				if err := errnoOf(m.data); err != nil {
					return err
				}
				return firstNonNil(firstErr, intrErr(intr))
			case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
				continue
			}
			if firstErr == nil {
				firstErr = each(m.data)
			}
		}
	}
}

func intrErr(intr bool) error {
	if intr {
		return netlink.ErrDumpInterrupted
	}
	return nil
}
