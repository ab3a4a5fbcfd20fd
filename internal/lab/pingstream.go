package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/overlayd/overlayd/icmpwire"
)

// maxStreamEchoes bounds a PingStream: ICMP sequence numbers are 16 bits,
// and a stream never reuses one (at 10 ms that is about 11 minutes).
const maxStreamEchoes = 1 << 16

// PingStream sends ICMP echo requests from a namespace at a fixed
// interval, the way `ping -i` does, and records which ones were answered,
// so that a test can count the packets lost while it changes something.
type PingStream struct {
	to       netip.Addr
	conn     net.PacketConn
	id       uint16
	interval time.Duration

	stop     chan struct{}
	sendDone chan struct{}
	recvDone chan struct{}

	mu       sync.Mutex
	sentAt   []time.Time // by sequence number
	received []bool      // by sequence number
}

// PingStats is what a stopped PingStream saw.
type PingStats struct {
	Sent, Received int
	// Lost lists the unanswered sequence numbers, in order.
	Lost []int
	// LostAt is when each lost echo was sent.
	LostAt []time.Time
	// Interval is the stream's send interval.
	Interval time.Duration
}

// LostCount is Sent - Received.
func (s PingStats) LostCount() int { return s.Sent - s.Received }

// String is a one-line summary with the lost runs as sequence ranges,
// e.g. "1500 sent, 1497 received, 3 lost (seq 700-702)".
func (s PingStats) String() string {
	out := fmt.Sprintf("%d sent, %d received, %d lost", s.Sent, s.Received, s.LostCount())
	if len(s.Lost) == 0 {
		return out
	}
	var runs []string
	for i := 0; i < len(s.Lost); {
		j := i
		for j+1 < len(s.Lost) && s.Lost[j+1] == s.Lost[j]+1 {
			j++
		}
		if i == j {
			runs = append(runs, fmt.Sprint(s.Lost[i]))
		} else {
			runs = append(runs, fmt.Sprintf("%d-%d", s.Lost[i], s.Lost[j]))
		}
		i = j + 1
	}
	return fmt.Sprintf("%s (seq %s)", out, strings.Join(runs, ", "))
}

// StartPingStream opens an ICMP socket in namespace ns and sends an echo
// to the IPv4 address to every interval until Stop.
func StartPingStream(ns string, to netip.Addr, interval time.Duration) (*PingStream, error) {
	if !to.Is4() {
		return nil, fmt.Errorf("ping stream to %s: not an IPv4 address", to)
	}
	if interval <= 0 {
		return nil, fmt.Errorf("ping stream to %s: interval %s is not positive", to, interval)
	}
	conn, err := listenICMP(ns, to)
	if err != nil {
		return nil, fmt.Errorf("ping stream to %s: %w", to, err)
	}
	s := &PingStream{
		to: to, conn: conn, id: randomID(), interval: interval,
		stop: make(chan struct{}), sendDone: make(chan struct{}), recvDone: make(chan struct{}),
		sentAt: make([]time.Time, 0, 1024), received: make([]bool, maxStreamEchoes),
	}
	go s.receive()
	go s.send()
	return s, nil
}

func (s *PingStream) send() {
	defer close(s.sendDone)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	dst := &net.IPAddr{IP: s.to.AsSlice()}
	for {
		s.mu.Lock()
		seq := len(s.sentAt)
		if seq == maxStreamEchoes {
			s.mu.Unlock()
			return
		}
		s.sentAt = append(s.sentAt, time.Now())
		s.mu.Unlock()
		// A send error (no route for a moment) is a lost echo like any other.
		s.conn.WriteTo(icmpwire.EchoRequest(s.id, uint16(seq), []byte("overlayd-lab-stream")), dst)
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

func (s *PingStream) receive() {
	defer close(s.recvDone)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return // closed by Stop
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		msg := buf[:n]
		if src.Unmap() != s.to || len(msg) < icmpHeaderLen || msg[0] != icmpEchoReply || binary.BigEndian.Uint16(msg[4:]) != s.id {
			continue
		}
		seq := int(binary.BigEndian.Uint16(msg[6:]))
		s.mu.Lock()
		if seq < len(s.sentAt) {
			s.received[seq] = true
		}
		s.mu.Unlock()
	}
}

// Stop stops sending, waits grace for the last replies, closes the
// socket and returns the counts. Call it once.
func (s *PingStream) Stop(grace time.Duration) PingStats {
	close(s.stop)
	<-s.sendDone
	time.Sleep(grace)
	s.conn.Close()
	<-s.recvDone
	s.mu.Lock()
	defer s.mu.Unlock()
	st := PingStats{Sent: len(s.sentAt), Interval: s.interval}
	for seq, at := range s.sentAt {
		if s.received[seq] {
			st.Received++
			continue
		}
		st.Lost = append(st.Lost, seq)
		st.LostAt = append(st.LostAt, at)
	}
	return st
}
