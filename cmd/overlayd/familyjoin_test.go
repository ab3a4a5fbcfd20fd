package main

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/subnet"
)

// fakeRules is a rulesKeeper that returns err and reports st.
type fakeRules struct {
	err  error
	st   iptables.Status
	runs int
}

func (r *fakeRules) Ensure() error                 { return r.err }
func (r *fakeRules) Status() iptables.Status       { return r.st }
func (r *fakeRules) Run(ctx context.Context) error { r.runs++; <-ctx.Done(); return nil }

// fakeFilter is a vxlanFilter that records the peers it is given.
type fakeFilter struct {
	peers    []netip.Addr
	err      error
	installs int
}

func (f *fakeFilter) SetPeers(p []netip.Addr) error { f.peers = p; return f.err }
func (f *fakeFilter) Install() error                { f.installs++; return f.err }
func (f *fakeFilter) Run(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return nil
}

// A family that is off leaves the other's keeper as it is: an IPv4-only
// node runs exactly the IPv4 manager.
func TestJoinKeepsTheOnlyFamily(t *testing.T) {
	r4, r6 := &fakeRules{}, &fakeRules{}
	if got := joinRules(r4, nil); got != rulesKeeper(r4) {
		t.Errorf("joinRules(v4, nil) = %#v, want the IPv4 keeper itself", got)
	}
	if got := joinRules(nil, r6); got != rulesKeeper(r6) {
		t.Errorf("joinRules(nil, v6) = %#v, want the IPv6 keeper itself", got)
	}
	if got := joinRules(nil, nil); got != nil {
		t.Errorf("joinRules(nil, nil) = %#v, want nil", got)
	}
	f4 := &fakeFilter{}
	if got := joinFilters(f4, nil); got != vxlanFilter(f4) {
		t.Errorf("joinFilters(v4, nil) = %#v, want the IPv4 filter itself", got)
	}
	if got := joinFilters(nil, nil); got != nil {
		t.Errorf("joinFilters(nil, nil) = %#v, want nil", got)
	}
}

func TestFamilyRulesEnsureAndStatus(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	lost := errors.New("ip6tables: nat chain FLANNEL-POSTRTG: lock held")
	tests := []struct {
		name        string
		err4, err6  error
		wantInPlace bool
		wantErr     []string
	}{
		{"both in place", nil, nil, true, nil},
		{"ipv6 failing", nil, lost, false, []string{"ipv6: " + lost.Error()}},
		{"both failing", lost, lost, false, []string{"ipv4: ", "ipv6: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r4 := &fakeRules{err: tt.err4, st: iptables.Status{LastCheck: t0, InPlace: tt.err4 == nil, Repairs: 2, LastError: tt.err4}}
			r6 := &fakeRules{err: tt.err6, st: iptables.Status{LastCheck: t0.Add(-time.Minute), InPlace: tt.err6 == nil, Repairs: 3, LastError: tt.err6}}
			k := joinRules(r4, r6)
			err := k.Ensure()
			st := k.Status()
			if st.InPlace != tt.wantInPlace || st.Repairs != 5 || !st.LastCheck.Equal(t0.Add(-time.Minute)) {
				t.Errorf("status %+v: want in place %t, 5 repairs, the older check time", st, tt.wantInPlace)
			}
			if tt.wantErr == nil {
				if err != nil || st.LastError != nil {
					t.Fatalf("Ensure = %v, LastError = %v, want nil", err, st.LastError)
				}
				return
			}
			for _, e := range []error{err, st.LastError} {
				if e == nil || (tt.err6 != nil && !errors.Is(e, tt.err6)) {
					t.Fatalf("error %v does not wrap %v", e, tt.err6)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(e.Error(), w) {
						t.Errorf("error %q lacks %q", e, w)
					}
				}
			}
		})
	}
}

func TestFamilyRulesRunRunsBoth(t *testing.T) {
	r4, r6 := &fakeRules{}, &fakeRules{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- joinRules(r4, r6).Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if r4.runs != 1 || r6.runs != 1 {
		t.Fatalf("runs: ipv4 %d, ipv6 %d; want 1 each", r4.runs, r6.runs)
	}
}

// Each family's filter gets the peers of its family only, IPv4-mapped
// addresses as IPv4; a failing family fails the install (fail closed).
func TestFamilyFilterSplitsPeers(t *testing.T) {
	f4, f6 := &fakeFilter{}, &fakeFilter{}
	f := joinFilters(f4, f6)
	peers := []netip.Addr{
		netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8:1::2"),
		netip.MustParseAddr("::ffff:192.0.2.3"), {}, netip.MustParseAddr("2001:db8:1::3"),
	}
	if err := f.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.2", "192.0.2.3"}; !slices.Equal(addrStrings(f4.peers), want) {
		t.Errorf("IPv4 filter got %v, want %v", f4.peers, want)
	}
	if want := []string{"2001:db8:1::2", "2001:db8:1::3"}; !slices.Equal(addrStrings(f6.peers), want) {
		t.Errorf("IPv6 filter got %v, want %v", f6.peers, want)
	}
	f6.err = errors.New("ipset: inet6 not supported")
	if err := f.Install(); err == nil || !strings.Contains(err.Error(), "ipv6: ") || f4.installs != 1 {
		t.Fatalf("Install = %v (IPv4 installs %d): want the IPv6 failure, the IPv4 filter still installed", err, f4.installs)
	}
}

// The IPv6 peer set's updates and the IPv4 set's do not overwrite each
// other in the feed.
func TestFilterFeedKeepsBothPeerSets(t *testing.T) {
	f := newFilterFeed(subnet.RealClock())
	f.SetAddrs([]netip.Addr{netip.MustParseAddr("192.0.2.2")})
	addrSink6(f).SetAddrs([]netip.Addr{netip.MustParseAddr("2001:db8:1::2")})
	f.SetAddrs([]netip.Addr{netip.MustParseAddr("192.0.2.3")})
	if got, want := addrStrings(f.sources()), []string{"192.0.2.3", "2001:db8:1::2"}; !slices.Equal(got, want) {
		t.Fatalf("sources %v, want %v", got, want)
	}
	if addrSink6(nil) != nil {
		t.Fatal("addrSink6(nil) is not an untyped nil")
	}
}

// The nftables mode programs IPv6 through netlink: no ip6tables needed,
// whatever the host has.
func TestCheckIPv6RulesModeNFTables(t *testing.T) {
	cfg := &subnet.Config{EnableIPv6: true, IPv6Network: netip.MustParsePrefix("2001:db8:1000::/48"), EnableNFTables: true}
	t.Setenv("PATH", t.TempDir()) // no ip6tables
	if err := checkIPv6RulesMode(cfg); err != nil {
		t.Fatalf("nftables with IPv6: %v", err)
	}
	cfg.EnableNFTables = false
	if err := checkIPv6RulesMode(cfg); err == nil || !strings.Contains(err.Error(), "ip6tables") {
		t.Fatalf("iptables mode with IPv6 and no ip6tables: error %v, want one naming ip6tables", err)
	}
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
