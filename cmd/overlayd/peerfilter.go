package main

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
)

// filterFeed hands the peer set's source addresses (peerset.AddrSink) to
// the VXLAN peer filter, off the peer set's goroutine. A dual-stack node
// has a second peer set, the IPv6 one, feeding ipv6Sink: the filter gets
// the addresses of both (familyjoin.go splits them by family).
type filterFeed struct {
	kick  chan struct{}
	clock subnet.Clock

	mu     sync.Mutex
	addrs  []netip.Addr
	addrs6 []netip.Addr // the IPv6 peer set's
}

func newFilterFeed(clock subnet.Clock) *filterFeed {
	return &filterFeed{kick: make(chan struct{}, 1), clock: clock}
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

// SetAddrs takes the addresses peers' VXLAN may come from (peerset.AddrSink).
func (f *filterFeed) SetAddrs(addrs []netip.Addr) {
	f.mu.Lock()
	f.addrs = addrs
	f.mu.Unlock()
	f.poke()
}

func (f *filterFeed) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// ipv6Sink is the AddrSink of the IPv6 peer set: its addresses are kept
// apart from the IPv4 set's, so neither set's update drops the other's.
func (f *filterFeed) ipv6Sink() peerset.AddrSink { return ipv6Feed{f} }

// ipv6Feed is filterFeed.ipv6Sink.
type ipv6Feed struct{ f *filterFeed }

// SetAddrs takes the addresses the IPv6 peers' VXLAN may come from.
func (s ipv6Feed) SetAddrs(addrs []netip.Addr) {
	s.f.mu.Lock()
	s.f.addrs6 = addrs
	s.f.mu.Unlock()
	s.f.poke()
}

// sources are the latest addresses of both peer sets.
func (f *filterFeed) sources() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.addrs6) == 0 {
		return f.addrs
	}
	return slices.Concat(f.addrs, f.addrs6)
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

// addrSink6 is the IPv6 peer set's AddrSink: nil (no filter) stays an
// untyped nil.
func addrSink6(f *filterFeed) peerset.AddrSink {
	if f == nil {
		return nil
	}
	return f.ipv6Sink()
}
