package health

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PacketConn is the responder's socket (a *net.UDPConn in the daemon).
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// Listen opens the responder's UDP socket on bind.
func Listen(bind netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(bind))
}

// Limiter is a token bucket: rate tokens per second, at most burst saved.
type Limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewLimiter returns a full bucket; now is the clock.
func NewLimiter(rate, burst float64, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, burst: burst, tokens: burst, last: now(), now: now}
}

// Allow takes a token if one is there.
func (l *Limiter) Allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	l.tokens += t.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = t
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// ResponderStats counts what the responder did.
type ResponderStats struct {
	Answered, Dropped, Limited uint64
}

// Responder answers probe requests on its socket.
type Responder struct {
	conn  PacketConn
	limit *Limiter
	log   *slog.Logger

	mu    sync.Mutex
	stats ResponderStats
}

// NewResponder answers on conn at most limit allows (nil: no limit).
func NewResponder(conn PacketConn, limit *Limiter, log *slog.Logger) *Responder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{conn: conn, limit: limit, log: log}
}

// Stats returns the counters so far.
func (r *Responder) Stats() ResponderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run answers until ctx ends, then closes the socket.
func (r *Responder) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	buf := make([]byte, MaxRequest+1)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			r.log.Debug("health responder read", "err", err)
			continue
		}
		r.answer(buf[:n], from)
	}
}

func (r *Responder) answer(req []byte, from netip.AddrPort) {
	nonce, err := parseRequest(req)
	if err != nil {
		r.count(func(s *ResponderStats) { s.Dropped++ })
		return
	}
	if r.limit != nil && !r.limit.Allow() {
		r.count(func(s *ResponderStats) { s.Limited++ })
		return
	}
	if _, err := r.conn.WriteToUDPAddrPort(reply(nonce, from), from); err != nil {
		r.log.Debug("health responder write", "to", from, "err", err)
		return
	}
	r.count(func(s *ResponderStats) { s.Answered++ })
}

func (r *Responder) count(f func(*ResponderStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}
