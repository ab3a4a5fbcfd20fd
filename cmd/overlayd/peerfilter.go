package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// filterFeed sits between the lease watch and the reconciler: it passes
// every call on unchanged and keeps the peers' underlay addresses for the
// VXLAN peer filter, which it updates off the watch's goroutine.
type filterFeed struct {
	next  subnet.PeerSink
	kick  chan struct{}
	clock subnet.Clock

	mu    sync.Mutex
	peers map[netip.Prefix]subnet.LeaseAttrs
}

func newFilterFeed(next subnet.PeerSink, clock subnet.Clock) *filterFeed {
	return &filterFeed{next: next, kick: make(chan struct{}, 1), clock: clock, peers: map[netip.Prefix]subnet.LeaseAttrs{}}
}

// peerSetter is what the feed uses of *iptables.PeerFilter.
type peerSetter interface {
	SetPeers(peers []netip.Addr) error
}

// Pacing of filterFeed.run.
const (
	filterRetry    = time.Second            // after a failed update
	filterMinPause = 200 * time.Millisecond // between two updates
)

func (f *filterFeed) ReplacePeers(leases []subnet.Lease) {
	f.mu.Lock()
	peers := make(map[netip.Prefix]subnet.LeaseAttrs, len(leases))
	for _, l := range leases {
		switch old, known := f.peers[l.Subnet]; {
		case !l.Unreadable:
			peers[l.Subnet] = l.Attrs
		case known:
			peers[l.Subnet] = old // keep the last good addresses, as in UpdatePeers
		}
	}
	f.peers = peers
	f.mu.Unlock()
	f.poke()
	f.next.ReplacePeers(leases)
}

func (f *filterFeed) UpdatePeers(events []subnet.Event) {
	f.mu.Lock()
	for _, e := range events {
		switch {
		case e.Type == subnet.EventRemoved:
			delete(f.peers, e.Lease.Subnet)
		case e.Lease.Unreadable:
			// Keep the last good addresses: the reconciler keeps this peer's
			// entries, so its packets must still get through.
		default:
			f.peers[e.Lease.Subnet] = e.Lease.Attrs
		}
	}
	f.mu.Unlock()
	f.poke()
	f.next.UpdatePeers(events)
}

func (f *filterFeed) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// sources are the addresses peers' VXLAN packets can come from: the
// advertised address (NAT'd source) and, for same-site peers, the private one.
func (f *filterFeed) sources() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := make(map[netip.Addr]bool, len(f.peers)*2)
	out := make([]netip.Addr, 0, len(f.peers)*2)
	for _, a := range f.peers {
		if a.BackendType != subnet.BackendVXLAN {
			continue
		}
		for _, ip := range []netip.Addr{a.PublicIP, a.PrivateIP} {
			if ip.IsValid() && !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	return out
}

// run applies the peer set to the filter whenever it changes, at most
// every filterMinPause, and retries a failed update after filterRetry.
// (The filter's own repair loop runs beside it.)
func (f *filterFeed) run(ctx context.Context, filter peerSetter, log *slog.Logger) error {
	var retry subnet.Timer
	defer func() { stopTimer(retry) }()
	fails := newFailureLog(log, f.clock, "vxlan peer filter update failed; retrying every second", failureLogEvery) // failurelog.go
	for {
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		case <-retryC:
		}
		stopTimer(retry)
		retry = nil
		if err := filter.SetPeers(f.sources()); err != nil {
			fails.failed(err)
			retry = f.clock.NewTimer(filterRetry)
		} else {
			fails.ok()
		}
		pause := f.clock.NewTimer(filterMinPause)
		select {
		case <-ctx.Done():
			pause.Stop()
			return nil
		case <-pause.C():
		}
	}
}

func stopTimer(t subnet.Timer) {
	if t != nil {
		t.Stop()
	}
}
