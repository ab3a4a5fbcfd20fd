package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/overlayd/overlayd/icmpwire"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// PingTimeout bounds one ping (a shorter context deadline wins).
const PingTimeout = time.Second

// Ping sends one ICMP echo from inside the pod's namespace and waits for
// the reply.
func (l *Lab) Ping(ctx context.Context, from *Pod, to netip.Addr) error {
	if err := PingFrom(ctx, from.NS, to); err != nil {
		return fmt.Errorf("pod %s: %w", from.Name, err)
	}
	return nil
}

// listenICMP opens a raw ICMP (to IPv4) or ICMPv6 socket inside ns.
func listenICMP(ns string, to netip.Addr) (net.PacketConn, error) {
	network, wildcard := "ip4:icmp", "0.0.0.0"
	if to.Is6() {
		network, wildcard = "ip6:ipv6-icmp", "::"
	}
	conn, err := netnsutil.In(ns, func() (net.PacketConn, error) { return net.ListenPacket(network, wildcard) })
	if err != nil {
		return nil, fmt.Errorf("open ICMP socket in netns %s: %w", ns, err)
	}
	return conn, nil
}

// PingFrom sends one ICMP (or ICMPv6) echo from inside namespace ns to
// an address through a raw socket (no ping binary needed) and waits up
// to PingTimeout for the matching reply.
func PingFrom(ctx context.Context, ns string, to netip.Addr) error {
	to = to.Unmap()
	if !to.IsValid() {
		return fmt.Errorf("ping %s: not an IP address", to)
	}
	conn, err := listenICMP(ns, to)
	if err != nil {
		return fmt.Errorf("ping %s: %w", to, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(PingTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	id, seq := randomID(), uint16(1)
	req := icmpwire.EchoRequest(id, seq, []byte("overlayd-lab"))
	if to.Is6() {
		req = icmpwire.EchoRequest6(id, seq, []byte("overlayd-lab"))
	}
	if _, err := conn.WriteTo(req, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		return fmt.Errorf("ping %s: send: %w", to, err)
	}
	return awaitEcho(ctx, conn, to, id, seq)
}

func awaitEcho(ctx context.Context, conn net.PacketConn, to netip.Addr, id, seq uint16) error {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("ping %s: %w", to, ctx.Err())
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("ping %s: no reply within %s", to, PingTimeout)
			}
			return fmt.Errorf("ping %s: receive: %w", to, err)
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		verdict := echoVerdict
		if to.Is6() {
			verdict = echoVerdict6
		}
		ok, icmpErr := verdict(buf[:n], id, seq)
		if icmpErr != nil {
			return fmt.Errorf("ping %s: %w from %s", to, icmpErr, src.Unmap())
		}
		if ok && src.Unmap() == to {
			return nil
		}
	}
}

func randomID() uint16 {
	var b [2]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}
