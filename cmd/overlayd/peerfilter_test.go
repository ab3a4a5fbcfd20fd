package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

type nopSink struct{}

func (nopSink) ReplacePeers([]peerset.Peer)  {}
func (nopSink) UpdatePeers([]peerset.Change) {}

func vxlanLease(sn, public, private string) subnet.Lease {
	p := netip.MustParsePrefix(sn)
	mac := fmt.Sprintf(`{"VNI":1,"VtepMAC":"02:00:00:00:%02x:00"}`, p.Addr().As4()[2])
	l := subnet.Lease{Subnet: p, Attrs: subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr(public), BackendType: subnet.BackendVXLAN, BackendData: []byte(mac)}}
	if private != "" {
		l.Attrs.PrivateIP = netip.MustParseAddr(private)
	}
	return l
}

// fedFilter is a filter feed behind a peer set that took a snapshot of
// leases, then events.
func fedFilter(t *testing.T, leases []subnet.Lease, events ...[]subnet.Event) *filterFeed {
	t.Helper()
	f := newFilterFeed(subnet.RealClock())
	set, err := peerset.New(peerset.Options{Network: netip.MustParsePrefix("10.244.0.0/16"), Peers: nopSink{}, Addrs: f})
	if err != nil {
		t.Fatal(err)
	}
	set.ReplacePeers(leases)
	set.Step()
	for _, ev := range events {
		set.UpdatePeers(ev)
		set.Step()
	}
	return f
}

func TestFilterFeedSources(t *testing.T) {
	a := vxlanLease("10.244.1.0/24", "203.0.113.1", "198.51.100.2")
	b := vxlanLease("10.244.2.0/24", "203.0.113.2", "")
	udp := subnet.Lease{Subnet: netip.MustParsePrefix("10.244.3.0/24"), Attrs: subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("203.0.113.3"), BackendType: "udp"}}
	tests := []struct {
		name   string
		events []subnet.Event
		want   []string
	}{
		// A's private address is not verified same-site: only PublicIPs.
		{"snapshot only", nil, []string{"203.0.113.1", "203.0.113.2"}},
		{"peer removed", []subnet.Event{{Type: subnet.EventRemoved, Lease: b}}, []string{"203.0.113.1"}},
		{"lease turned unreadable keeps the last good addresses",
			[]subnet.Event{{Type: subnet.EventAdded, Lease: subnet.Lease{Subnet: a.Subnet, Unreadable: true}}},
			[]string{"203.0.113.1", "203.0.113.2"}},
		{"new peer", []subnet.Event{{Type: subnet.EventAdded, Lease: vxlanLease("10.244.4.0/24", "203.0.113.4", "")}},
			[]string{"203.0.113.1", "203.0.113.2", "203.0.113.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fedFilter(t, []subnet.Lease{a, b, udp}, tt.events)
			var got []string
			for _, ip := range f.sources() {
				got = append(got, ip.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("sources %v, want %v", got, tt.want)
			}
		})
	}
}

// flakySetter fails its first fail calls and records every call.
type flakySetter struct {
	fail  int
	calls chan []netip.Addr
}

func (s *flakySetter) SetPeers(peers []netip.Addr) error {
	s.calls <- peers
	if s.fail > 0 {
		s.fail--
		return errors.New("ipset busy")
	}
	return nil
}

func TestFilterFeedRetriesAFailedUpdateAfterASecond(t *testing.T) {
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFilterFeed(clock)
	setter := &flakySetter{fail: 1, calls: make(chan []netip.Addr, 4)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx, setter, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()

	f.SetAddrs([]netip.Addr{netip.MustParseAddr("203.0.113.1")})
	if got := <-setter.calls; len(got) != 1 {
		t.Fatalf("first update %v", got)
	}
	// The failure arms the retry (1s) beside the pause (200ms).
	if !clock.WaitForTimers(2, 10*time.Second) {
		t.Fatal("no retry scheduled after a failed update")
	}
	if step, ok := clock.AdvanceToNext(10 * time.Second); !ok || step != filterMinPause {
		t.Fatalf("first timer after %v, want the %v pause", step, filterMinPause)
	}
	select {
	case got := <-setter.calls:
		t.Fatalf("updated again after the pause alone: %v", got)
	default:
	}
	if step, ok := clock.AdvanceToNext(10 * time.Second); !ok || step != filterRetry-filterMinPause {
		t.Fatalf("retry after %v more, want %v", step, filterRetry-filterMinPause)
	}
	select {
	case got := <-setter.calls:
		if len(got) != 1 || got[0] != netip.MustParseAddr("203.0.113.1") {
			t.Fatalf("retried with %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failed update was not retried")
	}
}

// A re-list can bring a lease that turned unreadable in a snapshot: the
// feed keeps its last good addresses, as it does for an event (and as the
// reconciler keeps its entries); an unreadable subnet never seen is not
// a source. A's private address is a source while it is verified.
func TestFilterFeedSnapshotKeepsUnreadableLeases(t *testing.T) {
	a := vxlanLease("10.244.1.0/24", "203.0.113.1", "198.51.100.2")
	b := vxlanLease("10.244.2.0/24", "203.0.113.2", "")
	f := newFilterFeed(subnet.RealClock())
	set, err := peerset.New(peerset.Options{Network: netip.MustParsePrefix("10.244.0.0/16"), Peers: nopSink{}, Addrs: f})
	if err != nil {
		t.Fatal(err)
	}
	set.ReplacePeers([]subnet.Lease{a, b})
	set.SetVerdict(peerset.Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: [6]byte{2, 0, 0, 0, 1, 0}})
	set.Step()
	set.ReplacePeers([]subnet.Lease{{Subnet: a.Subnet, Unreadable: true},
		{Subnet: netip.MustParsePrefix("10.244.9.0/24"), Unreadable: true}})
	set.Step()
	var got []string
	for _, ip := range f.sources() {
		got = append(got, ip.String())
	}
	slices.Sort(got)
	if want := []string{"198.51.100.2", "203.0.113.1"}; !slices.Equal(got, want) {
		t.Fatalf("sources %v, want %v (a kept, b gone)", got, want)
	}
}
