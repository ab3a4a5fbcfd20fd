package csumtrigger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Load is what Drive sends.
type Load struct {
	Conns      int           // TCP connections, one after another
	Bytes      int           // bytes sent on each, then echoed back as a count
	ConnLimit  time.Duration // a connection not done by then has failed
	StallAfter time.Duration // a connection slower than this stalled (retransmission timeouts)
	Datagrams  int           // UDP datagrams of DatagramSize bytes
	DatagramSz int
}

// TCPResult counts the connections.
type TCPResult struct {
	Conns, Failed, Stalled int
	Slowest                time.Duration
	FirstError             string
}

// UDPResult counts the datagrams.
type UDPResult struct {
	Sent, Received int
}

// Server answers Drive's traffic inside the backend pod's namespace.
type Server struct {
	ln       net.Listener
	pc       net.PacketConn
	received atomic.Int64
	done     chan struct{}
}

// Serve listens on backend (TCP and UDP, same port) inside ns.
func Serve(ns string, backend netip.AddrPort) (*Server, error) {
	s := &Server{done: make(chan struct{})}
	err := netnsutil.Do(ns, func() error {
		var err error
		if s.ln, err = net.Listen("tcp", backend.String()); err != nil {
			return err
		}
		s.pc, err = net.ListenPacket("udp", backend.String())
		return err
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("serve %s in %s: %w", backend, ns, err)
	}
	if uc, ok := s.pc.(*net.UDPConn); ok {
		uc.SetReadBuffer(4 << 20) // bursts of datagrams, a reader that may be descheduled
	}
	go s.acceptLoop()
	go s.udpLoop()
	return s, nil
}

// acceptLoop reads each connection to EOF and answers with the byte count.
func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			binary.Write(c, binary.BigEndian, uint64(n))
		}()
	}
}

func (s *Server) udpLoop() {
	buf := make([]byte, 65536)
	for {
		if _, _, err := s.pc.ReadFrom(buf); err != nil {
			return
		}
		s.received.Add(1)
	}
}

// Close stops the server.
func (s *Server) Close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
}

// DriveTCP opens load.Conns connections from ns to vip one after another,
// each sending load.Bytes and waiting for the count.
func DriveTCP(ctx context.Context, ns string, vip netip.AddrPort, load Load) TCPResult {
	var r TCPResult
	payload := make([]byte, load.Bytes)
	for i := range payload {
		payload[i] = byte(i)
	}
	for i := 0; i < load.Conns && ctx.Err() == nil; i++ {
		start := time.Now()
		err := oneConn(ctx, ns, vip, payload, load.ConnLimit)
		d := time.Since(start)
		r.Conns++
		r.Slowest = max(r.Slowest, d)
		switch {
		case err != nil:
			r.Failed++
			if r.FirstError == "" {
				r.FirstError = err.Error()
			}
		case d > load.StallAfter:
			r.Stalled++
		}
	}
	return r
}

func oneConn(ctx context.Context, ns string, vip netip.AddrPort, payload []byte, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := netnsutil.In(ns, func() (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", vip.String()) })
	if err != nil {
		return fmt.Errorf("dial %s: %w", vip, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("send %d bytes: %w", len(payload), err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return fmt.Errorf("read the count: %w", err)
	}
	if n != uint64(len(payload)) {
		return fmt.Errorf("server got %d of %d bytes", n, len(payload))
	}
	return nil
}

// DriveUDP sends load.Datagrams datagrams from ns to vip, paced, then
// gives the stragglers a moment and reads the server's count.
func DriveUDP(ctx context.Context, ns string, vip netip.AddrPort, load Load, srv *Server) (UDPResult, error) {
	c, err := netnsutil.In(ns, func() (net.Conn, error) { return net.Dial("udp", vip.String()) })
	if err != nil {
		return UDPResult{}, fmt.Errorf("dial udp %s: %w", vip, err)
	}
	defer c.Close()
	before := srv.received.Load()
	msg := make([]byte, load.DatagramSz)
	r := UDPResult{}
	for i := 0; i < load.Datagrams && ctx.Err() == nil; i++ {
		if _, err := c.Write(msg); err != nil && !errors.Is(err, net.ErrClosed) {
			continue // ECONNREFUSED from an earlier ICMP: keep counting what arrives
		}
		r.Sent++
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	r.Received = int(srv.received.Load() - before)
	return r, nil
}
