package rtt

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
)

// TestClientCountsLossAndSkipsLateAnswers drives the UDP client against
// a server on root loopback that drops one request and answers another
// twice, late: a lost round trip must not shift the later ones.
func TestClientCountsLossAndSkipsLateAnswers(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			switch stampOf(buf[:n]) {
			case 1: // dropped
			case 2: // answered with a stale copy of 1 first
				stale := make([]byte, n)
				stamp(stale, 1)
				srv.WriteTo(stale, from)
				srv.WriteTo(buf[:n], from)
			default:
				srv.WriteTo(buf[:n], from)
			}
		}
	}()
	conn, err := net.Dial("udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newClient(conn, UDP, Options{Payload: 16, Timeout: 200 * time.Millisecond})
	wantAnswered := []bool{true, false, true, true}
	for seq, want := range wantAnswered {
		d, answered, err := c.roundTrip(uint64(seq))
		if err != nil || answered != want || (answered && d <= 0) {
			t.Errorf("round trip %d = %s, answered %t, %v; want answered %t", seq, d, answered, err, want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"fine", Options{RoundTrips: 1, Payload: 1}, true},
		{"no round trips", Options{Payload: 64}, false},
		{"negative warmup", Options{RoundTrips: 1, Warmup: -1, Payload: 64}, false},
		{"empty payload", Options{RoundTrips: 1}, false},
		{"payload over a datagram", Options{RoundTrips: 1, Payload: 70000}, false},
	}
	for _, tt := range tests {
		if err := tt.o.validate(); (err == nil) != tt.ok {
			t.Errorf("%s: validate = %v, want ok %t", tt.name, err, tt.ok)
		}
	}
}

// TestMeasureBetweenNamespaces runs both protocols between two
// namespaces joined by a veth pair.
func TestMeasureBetweenNamespaces(t *testing.T) {
	a, b := nsnet.VethPairT(t, "rtt", netip.MustParsePrefix("203.0.113.0/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, proto := range Protocols() {
		for _, payload := range []int{1, 64} {
			res, err := Measure(ctx, proto, a, b, Options{RoundTrips: 50, Warmup: 5, Payload: payload})
			if err != nil {
				t.Fatalf("%s payload %d: %v", proto, payload, err)
			}
			s := res.Summary()
			if s.Count+s.Lost != 50 || s.Count == 0 || s.Min <= 0 || s.P50 > s.P99 || s.P99 > s.Max {
				t.Errorf("%s payload %d: summary %+v", proto, payload, s)
			}
		}
	}
	cancelled, stop := context.WithCancel(ctx)
	stop()
	if _, err := Measure(cancelled, TCP, a, b, Options{RoundTrips: 10, Payload: 8}); err == nil {
		t.Error("Measure with a cancelled context succeeded")
	}
}
