package samesite

import (
	"fmt"
	"net"
	"net/netip"
)

// Conn is the packet seam: one UDP socket bound to the node's bind
// address and the same-site port, used to answer probes and to send our
// own (so peers see probes coming from private:port). Implementations
// must allow ReadFrom concurrently with WriteTo; Close must make a
// blocked ReadFrom return an error wrapping net.ErrClosed.
type Conn interface {
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	WriteTo(b []byte, to netip.AddrPort) (int, error)
	Close() error
}

// Listen opens the UDP socket on bind (in the calling thread's network
// namespace).
func Listen(bind netip.AddrPort) (Conn, error) {
	if !bind.Addr().Is4() || bind.Port() == 0 {
		return nil, fmt.Errorf("same-site listen: %s is not an IPv4 address with a port", bind)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(bind))
	if err != nil {
		return nil, fmt.Errorf("same-site listen on udp %s: %w", bind, err)
	}
	return udpConn{c}, nil
}

type udpConn struct{ c *net.UDPConn }

func (u udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err
}

func (u udpConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, to)
}

func (u udpConn) Close() error { return u.c.Close() }
