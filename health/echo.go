package health

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Echo sends one request from src (port 0: any) to dst and waits for the
// matching reply until ctx ends. It returns the round trip and the
// address the responder saw the request come from.
func Echo(ctx context.Context, src netip.Addr, dst netip.AddrPort) (time.Duration, netip.AddrPort, error) {
	var laddr *net.UDPAddr
	if src.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("health echo to %s: listen on %s: %w", dst, src, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	var n Nonce
	rand.Read(n[:])
	start := time.Now()
	if _, err := conn.WriteToUDPAddrPort(Request(n), dst); err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("health echo to %s: %w", dst, err)
	}
	buf := make([]byte, MaxRequest)
	for {
		k, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, ErrTimeout) || isTimeout(err) {
				return 0, netip.AddrPort{}, fmt.Errorf("health echo to %s: %w", dst, ErrTimeout)
			}
			return 0, netip.AddrPort{}, fmt.Errorf("health echo to %s: %w", dst, err)
		}
		got, seen, err := ParseReply(buf[:k])
		if err != nil || got != n || from.Addr().Unmap() != dst.Addr() {
			continue
		}
		return time.Since(start), seen, nil
	}
}

// ErrTimeout: no answer in time.
var ErrTimeout = errors.New("no answer")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
