// Package rtt measures request/response latency between two network
// namespaces: an echo server whose socket lives in the target namespace,
// a client socket in the source namespace, both in this process, and
// one round trip at a time, timed with the monotonic clock.
package rtt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
)

// Protocol is the transport of a measurement.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Protocols lists the measured transports in report order.
func Protocols() []Protocol { return []Protocol{TCP, UDP} }

// DefaultTimeout bounds one round trip: a UDP one counts as lost after
// it, a TCP one fails the measurement.
const DefaultTimeout = time.Second

// maxPayload keeps a request in one UDP datagram.
const maxPayload = 65000

// Options shape a measurement.
type Options struct {
	RoundTrips int // timed round trips
	Warmup     int // untimed round trips first (ARP, route and conntrack caches)
	Payload    int // bytes per request and per response
	Timeout    time.Duration
}

func (o Options) validate() error {
	if o.RoundTrips < 1 {
		return fmt.Errorf("rtt options: RoundTrips %d, want at least 1", o.RoundTrips)
	}
	if o.Warmup < 0 {
		return fmt.Errorf("rtt options: Warmup %d is negative", o.Warmup)
	}
	if o.Payload < 1 || o.Payload > maxPayload {
		return fmt.Errorf("rtt options: Payload %d is not in 1..%d", o.Payload, maxPayload)
	}
	return nil
}

// Result holds every timed round trip, in order.
type Result struct {
	Protocol Protocol
	RTTs     []time.Duration
	Lost     int
}

// Summary summarises the result.
func (r Result) Summary() Summary { return Summarize(r.RTTs, r.Lost) }

// Measure starts an echo server on to and times opts.RoundTrips round
// trips from a client socket in from's namespace, after opts.Warmup
// untimed ones.
func Measure(ctx context.Context, proto Protocol, from, to nsnet.Endpoint, opts Options) (Result, error) {
	s, err := Open(ctx, proto, from, to, opts)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	res := Result{Protocol: proto, RTTs: make([]time.Duration, 0, opts.RoundTrips)}
	if err := s.Run(ctx, opts.RoundTrips, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// Session is an echo server in one namespace and a client connected to
// it from another, ready for round trips. Several sessions can be open
// at once, so that paths are measured in alternating blocks and load
// from elsewhere on the machine falls on all of them alike.
type Session struct {
	proto    Protocol
	from, to nsnet.Endpoint
	srv      *echoServer
	conn     net.Conn
	c        *client
	seq      uint64
}

// Open starts the server and the client and runs opts.Warmup untimed
// round trips. Close the session.
func Open(ctx context.Context, proto Protocol, from, to nsnet.Endpoint, opts Options) (*Session, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	srv, addr, err := startEcho(proto, to)
	if err != nil {
		return nil, err
	}
	conn, err := nsnet.Dial(ctx, from, string(proto), addr)
	if err != nil {
		srv.Close()
		return nil, err
	}
	s := &Session{proto: proto, from: from, to: to, srv: srv, conn: conn, c: newClient(conn, proto, opts)}
	if err := s.Run(ctx, opts.Warmup, nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return s, nil
}

// Run times n round trips and appends them to into (nil discards them).
func (s *Session) Run(ctx context.Context, n int, into *Result) error {
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Now()) })
	defer stop()
	for range n {
		d, answered, err := s.c.roundTrip(s.seq)
		s.seq++
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s -> %s: %w", s.proto, s.from, s.to, ctx.Err())
		}
		if err != nil {
			return fmt.Errorf("%s %s -> %s: round trip %d: %w", s.proto, s.from, s.to, s.seq-1, err)
		}
		switch {
		case into == nil:
		case answered:
			into.RTTs = append(into.RTTs, d)
		default:
			into.Lost++
		}
	}
	return nil
}

// Close stops the client and the server.
func (s *Session) Close() {
	s.conn.Close()
	if s.srv != nil { // nil for Dialed sessions: the server is remote
		s.srv.Close()
	}
}

func startEcho(proto Protocol, to nsnet.Endpoint) (*echoServer, net.Addr, error) {
	switch proto {
	case TCP:
		ln, err := nsnet.Listen(to)
		if err != nil {
			return nil, nil, err
		}
		return serveTCP(ln), ln.Addr(), nil
	case UDP:
		pc, err := nsnet.ListenPacket(to)
		if err != nil {
			return nil, nil, err
		}
		return serveUDP(pc), pc.LocalAddr(), nil
	}
	return nil, nil, fmt.Errorf("protocol %q: want tcp or udp", proto)
}

// client sends one request at a time; the first bytes of each request
// carry its sequence number so that a late UDP answer is not mistaken
// for the current one.
type client struct {
	conn     net.Conn
	proto    Protocol
	timeout  time.Duration
	req, rsp []byte
}

func newClient(conn net.Conn, proto Protocol, opts Options) *client {
	return &client{
		conn:    conn,
		proto:   proto,
		timeout: opts.Timeout,
		req:     make([]byte, opts.Payload),
		rsp:     make([]byte, opts.Payload+1), // +1: see a longer datagram as foreign
	}
}

// roundTrip returns the time from send to the matching answer; answered
// is false when a UDP answer did not come within the timeout.
func (c *client) roundTrip(seq uint64) (d time.Duration, answered bool, err error) {
	stamp(c.req, seq)
	start := time.Now()
	if err := c.conn.SetDeadline(start.Add(c.timeout)); err != nil {
		return 0, false, err
	}
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, false, fmt.Errorf("send: %w", err)
	}
	if c.proto == TCP {
		if _, err := io.ReadFull(c.conn, c.rsp[:len(c.req)]); err != nil {
			return 0, false, fmt.Errorf("receive: %w", err)
		}
		return time.Since(start), true, nil
	}
	for {
		n, err := c.conn.Read(c.rsp)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("receive: %w", err)
		}
		if n == len(c.req) && stampOf(c.rsp[:n]) == stampOf(c.req) {
			return time.Since(start), true, nil
		}
	}
}

// stamp writes seq into the first (up to 8) bytes of b.
func stamp(b []byte, seq uint64) {
	var full [8]byte
	binary.LittleEndian.PutUint64(full[:], seq)
	copy(b, full[:])
}

func stampOf(b []byte) uint64 {
	var full [8]byte
	copy(full[:], b)
	return binary.LittleEndian.Uint64(full[:])
}
