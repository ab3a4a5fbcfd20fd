package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
)

const chunkSize = 128 << 10

type sinkResult struct {
	bytes   int64
	elapsed time.Duration
	err     error
}

// measureBuiltin writes for d from a socket in from's namespace to a sink
// in to's namespace; the sink counts what arrived between accept and EOF.
func measureBuiltin(ctx context.Context, from, to nsnet.Endpoint, d time.Duration) (Result, error) {
	ln, err := nsnet.Listen(to)
	if err != nil {
		return Result{}, err
	}
	defer ln.Close()
	sunk := make(chan sinkResult, 1)
	go func() { sunk <- sink(ln) }()

	conn, err := nsnet.Dial(ctx, from, "tcp", ln.Addr())
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close(); ln.Close() })
	defer stop()

	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return Result{}, fmt.Errorf("dial from %s: got a %T, not a TCP connection", from, conn)
	}
	if err := send(tcp, d); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, err
	}
	s := <-sunk
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if s.err != nil {
		return Result{}, s.err
	}
	return Result{Tool: ToolBuiltin, Bytes: s.bytes, Duration: s.elapsed, BitsPerSecond: rate(s.bytes, s.elapsed), Retransmits: -1}, nil
}

func send(conn *net.TCPConn, d time.Duration) error {
	buf := make([]byte, chunkSize)
	deadline := time.Now().Add(d)
	conn.SetWriteDeadline(deadline)
	for time.Now().Before(deadline) {
		if _, err := conn.Write(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return fmt.Errorf("send: %w", err)
		}
	}
	conn.SetWriteDeadline(time.Time{})
	if err := conn.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

func sink(ln net.Listener) sinkResult {
	c, err := ln.Accept()
	if err != nil {
		return sinkResult{err: fmt.Errorf("accept: %w", err)}
	}
	defer c.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return sinkResult{err: fmt.Errorf("receive: %w", err)}
	}
	return sinkResult{bytes: n, elapsed: time.Since(start)}
}
