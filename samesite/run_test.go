package samesite

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet/subnettest"
)

// TestRunVerifiesThroughTheReadLoop runs two detectors as the daemon does:
// the snapshot wakes Run, probes go out, the read loops answer and check,
// and the verdict is reported.
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
	verified := func(h, peer *host) func() bool {
		return func() bool {
			got := h.next.all()
			return len(got) > 0 && got[len(got)-1].Subnet == peer.lease.Subnet &&
				dst(h, peer.lease) == peer.lease.Attrs.PrivateIP
		}
	}
	if !waitFor(5*time.Second, verified(a, b)) || !waitFor(5*time.Second, verified(b, a)) {
		t.Fatalf("not verified: a %v, b %v", a.det.Verified(), b.det.Verified())
	}

	// b goes silent: a's re-verification after Interval fails 3 times.
	b.conn.setDeaf(true)
	fellBack := func() bool { return dst(a, b.lease) == b.lease.Attrs.PublicIP }
	for i := 0; i < 10 && !fellBack(); i++ {
		if _, ok := clock.AdvanceToNext(5 * time.Second); !ok {
			t.Fatal("no probe timer pending")
		}
		waitFor(100*time.Millisecond, fellBack)
	}
	if !fellBack() {
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

func TestNoVerdictSinkDiscards(t *testing.T) {
	clock := subnettest.NewClock(testStart)
	a := newHost(t, newFakeNet(), clock, "a", 2, 1)
	a.det.o.Verdicts = discardVerdicts{}
	c, _ := candidateOf(testLease(2, a.lease.Attrs.PrivateIP.Next(), []byte{2, 0, 0, 0, 0, 2}))
	a.det.ReplaceCandidates([]Candidate{c})
	a.det.mu.Lock()
	a.det.setVerdict(a.det.peers[c.Subnet], true)
	a.det.mu.Unlock()
	a.det.UpdateCandidates(nil, []netip.Prefix{c.Subnet})
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
