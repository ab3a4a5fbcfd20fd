package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// SinkServer receives streams on a listener the caller opened (`overlayd
// bench --serve`) and, at each stream's end, answers with what arrived:
// 8 bytes of byte count, 8 of nanoseconds from accept to EOF.
type SinkServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

// ServeSink accepts streams on ln until Close.
func ServeSink(ln net.Listener) *SinkServer {
	s := &SinkServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				start := time.Now()
				n, err := io.Copy(io.Discard, c)
				if err != nil {
					return
				}
				var rep [16]byte
				binary.BigEndian.PutUint64(rep[:8], uint64(n))
				binary.BigEndian.PutUint64(rep[8:], uint64(time.Since(start)))
				c.Write(rep[:])
			}()
		}
	}()
	return s
}

// Close stops accepting and waits for the streams in progress.
func (s *SinkServer) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// MeasureRemote sends one stream for d over conn (connected to a
// SinkServer) and returns the receiver's rate, as it reported it.
func MeasureRemote(ctx context.Context, conn *net.TCPConn, d time.Duration) (Result, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := send(conn, d); err != nil {
		return Result{}, err
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var rep [16]byte
	if _, err := io.ReadFull(conn, rep[:]); err != nil {
		return Result{}, fmt.Errorf("read the sink's report: %w", err)
	}
	n, elapsed := int64(binary.BigEndian.Uint64(rep[:8])), time.Duration(binary.BigEndian.Uint64(rep[8:]))
	return Result{Tool: ToolBuiltin, Bytes: n, Duration: elapsed, BitsPerSecond: rate(n, elapsed), Retransmits: -1}, nil
}
