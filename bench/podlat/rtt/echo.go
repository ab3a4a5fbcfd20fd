package rtt

import (
	"errors"
	"io"
	"net"
	"sync"
)

// echoServer answers every TCP connection and UDP datagram with the bytes
// it received, until Close.
type echoServer struct {
	ln net.Listener
	pc net.PacketConn

	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  []net.Conn
}

func serveTCP(ln net.Listener) *echoServer {
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func serveUDP(pc net.PacketConn) *echoServer {
	s := &echoServer{pc: pc}
	s.wg.Add(1)
	go s.packetLoop()
	return s
}

func (s *echoServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			io.Copy(c, c) // echo until the client or Close ends it
		}()
	}
}

// track records c for Close; false when Close already ran.
func (s *echoServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

func (s *echoServer) packetLoop() {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // e.g. ICMP errors surfacing on the socket
		}
		s.pc.WriteTo(buf[:n], from)
	}
}

// Close stops the server and waits for its goroutines.
func (s *echoServer) Close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
