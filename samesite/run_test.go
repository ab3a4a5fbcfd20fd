package samesite

import (
	"context"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// TestRunVerifiesThroughTheReadLoop runs two detectors as the daemon does:
// the snapshot wakes Run, probes go out, the read loops answer and check,
// and the verdict reaches the reconciler as a re-delivered lease.
func TestRunVerifiesThroughTheReadLoop(t *testing.T) {
	clock := subnettest.NewClock(testStart)
	vpc := newFakeNet()
	a := newHost(t, vpc, clock, "a", 2, 1)
	b := newHost(t, vpc, clock, "b", 3, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, h := range []*host{a, b} {
		go func() { done <- h.det.Run(ctx) }()
	}
	feedPeers(a, b)
	verified := func(h, peer *host) func(*subnettest.Sink) bool {
		return func(s *subnettest.Sink) bool {
			events := s.Events()
			return len(events) > 0 && events[len(events)-1].Lease.Subnet == peer.lease.Subnet &&
				h.det.PeerDst(peer.lease) == peer.lease.Attrs.PrivateIP
		}
	}
	if !a.next.WaitFor(5*time.Second, verified(a, b)) || !b.next.WaitFor(5*time.Second, verified(b, a)) {
		t.Fatalf("not verified: a %v, b %v", a.det.Verified(), b.det.Verified())
	}

	// b goes silent: a's re-verification after Interval fails 3 times.
	b.conn.setDeaf(true)
	fellBack := func(*subnettest.Sink) bool { return a.det.PeerDst(b.lease) == b.lease.Attrs.PublicIP }
	for i := 0; i < 10 && !fellBack(nil); i++ {
		if _, ok := clock.AdvanceToNext(5 * time.Second); !ok {
			t.Fatal("no probe timer pending")
		}
		a.next.WaitFor(100*time.Millisecond, fellBack)
	}
	if !fellBack(nil) {
		t.Fatalf("a still sends to b's private address; peers %+v", a.det.peers[b.lease.Subnet])
	}

	cancel()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	if _, _, err := a.conn.pop(); err == nil {
		t.Error("Run returned without closing its Conn")
	}
}

func TestSinkWithoutNextDiscards(t *testing.T) {
	clock := subnettest.NewClock(testStart)
	a := newHost(t, newFakeNet(), clock, "a", 2, 1)
	s := a.det.Sink(nil)
	s.ReplacePeers([]subnet.Lease{testLease(2, a.lease.Attrs.PrivateIP.Next(), []byte{2, 0, 0, 0, 0, 2})})
	s.UpdatePeers([]subnet.Event{{Type: subnet.EventRemoved, Lease: a.lease}})
}
