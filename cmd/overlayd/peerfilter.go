package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/subnet"
)

// filterFeed sits between the lease watch and the reconciler: it passes
// every call on unchanged and keeps the peers' underlay addresses for the
// VXLAN peer filter, which it updates off the watch's goroutine.
type filterFeed struct {
	next subnet.PeerSink
	kick chan struct{}

	mu    sync.Mutex
	peers map[netip.Prefix]subnet.LeaseAttrs
}

func newFilterFeed(next subnet.PeerSink) *filterFeed {
	return &filterFeed{next: next, kick: make(chan struct{}, 1), peers: map[netip.Prefix]subnet.LeaseAttrs{}}
}

func (f *filterFeed) ReplacePeers(leases []subnet.Lease) {
	f.mu.Lock()
	clear(f.peers)
	for _, l := range leases {
		f.peers[l.Subnet] = l.Attrs
	}
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
// every 200ms. (The filter's own repair loop runs beside it.)
func (f *filterFeed) run(ctx context.Context, filter *iptables.PeerFilter, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		}
		if err := filter.SetPeers(f.sources()); err != nil {
			log.Error("vxlan peer filter update failed; retrying", "err", err)
			time.AfterFunc(time.Second, f.poke)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
