package rtt

import (
	"context"
	"fmt"
	"net"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
)

// EchoServer answers every TCP connection and UDP datagram with the bytes
// it received, on sockets the caller opened (`overlayd bench --serve`
// runs one on a real node for clients on other nodes).
type EchoServer struct{ s *echoServer }

// ServeTCP echoes on ln until Close.
func ServeTCP(ln net.Listener) *EchoServer { return &EchoServer{serveTCP(ln)} }

// ServeUDP echoes on pc until Close.
func ServeUDP(pc net.PacketConn) *EchoServer { return &EchoServer{serveUDP(pc)} }

// Close stops the server.
func (e *EchoServer) Close() { e.s.Close() }

// Dialed opens a session over conn, already connected (by the caller) to
// an echo server elsewhere, and runs opts.Warmup untimed round trips.
// from and to only name the ends in errors. Close the session (it closes
// conn).
func Dialed(ctx context.Context, proto Protocol, conn net.Conn, from, to nsnet.Endpoint, opts Options) (*Session, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	s := &Session{proto: proto, from: from, to: to, conn: conn, c: newClient(conn, proto, opts)}
	if err := s.Run(ctx, opts.Warmup, nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return s, nil
}
