package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// SeenSource listens on TCP (any address of dst's family, a fresh port)
// inside namespace toNS, connects to dst at that port from inside fromNS
// and returns the source address the listener saw: what a pod at dst
// sees of a sender in fromNS, so that a SNAT on the way shows (dst may
// also be an address a NAT forwards into toNS).
func SeenSource(ctx context.Context, fromNS, toNS string, dst netip.Addr) (netip.Addr, error) {
	network, wildcard := "tcp4", "0.0.0.0:0"
	if dst.Is6() {
		network, wildcard = "tcp6", "[::]:0"
	}
	ln, err := netnsutil.In(toNS, func() (net.Listener, error) { return net.Listen(network, wildcard) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listen at %s in netns %s: %w", dst, toNS, err)
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan netip.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- netip.Addr{}
			return
		}
		c.Close()
		accepted <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	}()
	c, err := DialIn(ctx, fromNS, "tcp", netip.AddrPortFrom(dst, port).String())
	if err != nil {
		return netip.Addr{}, err
	}
	c.Close()
	select {
	case a := <-accepted:
		if !a.IsValid() {
			return a, fmt.Errorf("accept at %s in netns %s failed", dst, toNS)
		}
		return a, nil
	case <-ctx.Done():
		return netip.Addr{}, fmt.Errorf("accept at %s in netns %s: %w", dst, toNS, ctx.Err())
	}
}
