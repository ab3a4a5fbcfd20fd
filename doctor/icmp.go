package doctor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/health"
)

// SocketProber pings with a raw ICMP socket (root or CAP_NET_RAW) and
// probes health responders over UDP.
type SocketProber struct{}

// Echo probes a health responder.
func (SocketProber) Echo(ctx context.Context, src netip.Addr, dst netip.AddrPort) (time.Duration, netip.AddrPort, error) {
	return health.Echo(ctx, src, dst)
}

// ErrNoReply: no echo reply before the deadline.
var ErrNoReply = errors.New("no echo reply")

// Ping sends one ICMP echo request of size bytes (the IP packet) from src
// to dst and waits for the reply until ctx ends. With df the packet
// carries DF and is never fragmented (IP_PMTUDISC_PROBE: the cached path
// MTU is ignored, so a black hole shows as a lost reply).
func (SocketProber) Ping(ctx context.Context, src, dst netip.Addr, size int, df bool) (time.Duration, error) {
	if size < 28 {
		size = 28
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return 0, fmt.Errorf("ping %s: raw ICMP socket: %w", dst, err)
	}
	defer unix.Close(fd)
	if src.IsValid() {
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return 0, fmt.Errorf("ping %s: bind %s: %w", dst, src, err)
		}
	}
	pmtu := unix.IP_PMTUDISC_DONT
	if df {
		pmtu = unix.IP_PMTUDISC_PROBE
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu); err != nil {
		return 0, fmt.Errorf("ping %s: IP_MTU_DISCOVER: %w", dst, err)
	}
	var idb [2]byte
	rand.Read(idb[:])
	id, seq := binary.BigEndian.Uint16(idb[:]), uint16(1)
	start := time.Now()
	if err := unix.Sendto(fd, echoRequest(id, seq, make([]byte, size-28)), 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return 0, fmt.Errorf("ping %s (%d bytes, df %t): %w", dst, size, df, err)
	}
	if err := awaitEcho(ctx, fd, dst, id, seq); err != nil {
		return 0, fmt.Errorf("ping %s (%d bytes, df %t): %w", dst, size, df, err)
	}
	return time.Since(start), nil
}

func awaitEcho(ctx context.Context, fd int, dst netip.Addr, id, seq uint16) error {
	buf := make([]byte, 65536)
	for {
		left := time.Second
		if d, ok := ctx.Deadline(); ok {
			left = time.Until(d)
		}
		if left <= 0 || ctx.Err() != nil {
			return ErrNoReply
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		ok, verr := echoVerdict(buf[:n], from, dst, id, seq)
		if ok || verr != nil {
			return verr
		}
	}
}

const (
	icmpEchoReply   = 0
	icmpUnreachable = 3
	icmpEchoRequest = 8
)

func echoRequest(id, seq uint16, payload []byte) []byte {
	msg := make([]byte, 8+len(payload))
	msg[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], payload)
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	return msg
}

// echoVerdict reads one packet (IPv4 header first, as a raw socket
// delivers it): our reply (ok), an ICMP error about our request (err), or
// anything else (neither).
func echoVerdict(pkt []byte, from unix.Sockaddr, dst netip.Addr, id, seq uint16) (bool, error) {
	if len(pkt) < 20 {
		return false, nil
	}
	ihl := int(pkt[0]&0x0f) * 4
	if len(pkt) < ihl+8 {
		return false, nil
	}
	msg := pkt[ihl:]
	switch msg[0] {
	case icmpEchoReply:
		sa, ok := from.(*unix.SockaddrInet4)
		return ok && netip.AddrFrom4(sa.Addr) == dst && binary.BigEndian.Uint16(msg[4:]) == id && binary.BigEndian.Uint16(msg[6:]) == seq, nil
	case icmpUnreachable:
		q := msg[8:]
		if len(q) >= 28 {
			qihl := int(q[0]&0x0f) * 4
			if len(q) >= qihl+8 && q[9] == unix.IPPROTO_ICMP && binary.BigEndian.Uint16(q[qihl+4:]) == id {
				return false, fmt.Errorf("ICMP destination unreachable (code %d)", msg[1])
			}
		}
	}
	return false, nil
}

// checksum is RFC 1071's.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
