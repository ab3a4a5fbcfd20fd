package health

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fakeConn delivers queued requests and records the answers.
type fakeConn struct {
	in   chan pkt
	sent []pkt
}

type pkt struct {
	b    []byte
	addr netip.AddrPort
}

func (f *fakeConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	p, ok := <-f.in
	if !ok {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	return copy(b, p.b), p.addr, nil
}

func (f *fakeConn) WriteToUDPAddrPort(b []byte, a netip.AddrPort) (int, error) {
	f.sent = append(f.sent, pkt{append([]byte(nil), b...), a})
	return len(b), nil
}
func (f *fakeConn) Close() error { return nil }

func TestResponderNeverAmplifies(t *testing.T) {
	from := netip.MustParseAddrPort("203.0.113.7:40000")
	var n Nonce
	n[0] = 7
	short := Request(n)[:ReplyLen-1]
	padded := append(Request(n), make([]byte, 100)...)
	wrongKind := Request(n)
	wrongKind[5] = kindReply
	tests := []struct {
		name    string
		req     []byte
		answers bool
	}{
		{"request", Request(n), true},
		{"padded request", padded, true},
		{"shorter than the reply", short, false},
		{"a reply", wrongKind, false},
		{"oversized", make([]byte, MaxRequest+1), false},
		{"garbage", []byte("hello"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeConn{in: make(chan pkt, 1)}
			c.in <- pkt{tt.req, from}
			close(c.in)
			r := NewResponder(c, nil, nil)
			r.Run(context.Background())
			if got := len(c.sent) == 1; got != tt.answers {
				t.Fatalf("answered %v, want %v", got, tt.answers)
			}
			if !tt.answers {
				return
			}
			ans := c.sent[0]
			if len(ans.b) > len(tt.req) || ans.addr != from {
				t.Errorf("answer of %d bytes to %s for a request of %d bytes from %s", len(ans.b), ans.addr, len(tt.req), from)
			}
			got, seen, err := ParseReply(ans.b)
			if err != nil || got != n || seen != from {
				t.Errorf("reply: nonce %v seen %s err %v", got, seen, err)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(10, 5, func() time.Time { return now })
	allowed := 0
	for range 20 {
		if l.Allow() {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("burst: %d allowed, want 5", allowed)
	}
	now = now.Add(500 * time.Millisecond)
	allowed = 0
	for range 20 {
		if l.Allow() {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("after 0.5s at 10/s: %d allowed, want 5", allowed)
	}
}

func TestEchoOverLoopback(t *testing.T) {
	conn, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewResponder(conn, nil, nil).Run(ctx)
	dst := conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
	defer ecancel()
	_, seen, err := Echo(ectx, netip.MustParseAddr("127.0.0.1"), dst)
	if err != nil || seen.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("echo: seen %s, %v", seen, err)
	}
}
