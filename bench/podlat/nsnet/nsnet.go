// Package nsnet opens sockets of the pod latency bench inside network
// namespaces: a listener in the target's namespace, a dialer in the
// source's, both in the calling process (a socket keeps the namespace it
// was created in).
package nsnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Endpoint is one end of a measured path: a namespace and an address
// that is reachable from the other end.
type Endpoint struct {
	// Name says what the endpoint is, e.g. "node0/pod1" or "node1".
	Name string
	NS   string
	IP   netip.Addr
}

func (e Endpoint) String() string { return fmt.Sprintf("%s(%s)", e.Name, e.IP) }

// Listen opens a TCP listener on e.IP with a kernel-chosen port inside
// e's namespace.
func Listen(e Endpoint) (net.Listener, error) {
	ln, err := netnsutil.In(e.NS, func() (net.Listener, error) { return net.Listen("tcp", netip.AddrPortFrom(e.IP, 0).String()) })
	if err != nil {
		return nil, fmt.Errorf("listen tcp on %s: %w", e, err)
	}
	return ln, nil
}

// ListenPacket opens a UDP socket on e.IP with a kernel-chosen port
// inside e's namespace.
func ListenPacket(e Endpoint) (net.PacketConn, error) {
	pc, err := netnsutil.In(e.NS, func() (net.PacketConn, error) { return net.ListenPacket("udp", netip.AddrPortFrom(e.IP, 0).String()) })
	if err != nil {
		return nil, fmt.Errorf("listen udp on %s: %w", e, err)
	}
	return pc, nil
}

// Dial connects from inside from's namespace to addr ("tcp" or "udp").
func Dial(ctx context.Context, from Endpoint, network string, addr net.Addr) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return nil, fmt.Errorf("dial from %s: address %q: %w", from, addr, err)
	}
	conn, err := lab.DialIn(ctx, from.NS, network, ap.String())
	if err != nil {
		return nil, fmt.Errorf("dial from %s: %w", from, err)
	}
	return conn, nil
}
