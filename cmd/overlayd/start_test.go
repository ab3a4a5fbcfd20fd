package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
	"github.com/overlayd/overlayd/vxlandata"
)

// fakeStartup records the steps start calls; the step named fail fails
// with err (errStep when nil).
type fakeStartup struct {
	calls []string
	fail  string
	err   error
	src   *fakeSource
}

var errStep = errors.New("step failed")

func (f *fakeStartup) step(name string) error {
	f.calls = append(f.calls, name)
	if name == f.fail {
		if f.err != nil {
			return f.err
		}
		return errStep
	}
	return nil
}

func (f *fakeStartup) openSource(context.Context) (leaseSource, *subnet.Config, error) {
	if err := f.step("openSource"); err != nil {
		return nil, nil, err
	}
	return f.src, &subnet.Config{}, nil
}

func (f *fakeStartup) openHost(*subnet.Config) error { return f.step("openHost") }

func (f *fakeStartup) installPeerFilter(*subnet.Config) error { return f.step("installPeerFilter") }

func (f *fakeStartup) setupDevice(context.Context, leaseSource, *subnet.Config) error {
	return f.step("setupDevice")
}

func (f *fakeStartup) acquireLease(context.Context, leaseSource, *subnet.Config) (subnet.Lease, error) {
	return subnet.Lease{}, f.step("acquireLease")
}

func (f *fakeStartup) setupHost(*subnet.Config, subnet.Lease) error { return f.step("setupHost") }

func (f *fakeStartup) runLoops(context.Context, leaseSource, *subnet.Config, subnet.Lease) error {
	return f.step("runLoops")
}

func (f *fakeStartup) closeHost() { f.calls = append(f.calls, "closeHost") }

// fakeSource is a leaseSource that records Close.
type fakeSource struct {
	etcdSource
	closed int
}

func (s *fakeSource) Close() error { s.closed++; return nil }

func TestStartOrderAndFailedStep(t *testing.T) {
	all := []string{"openSource", "openHost", "installPeerFilter", "setupDevice", "acquireLease", "setupHost", "runLoops", "closeHost"}
	tests := []struct {
		fail       string
		want       []string
		wantClosed int // lease source closes
	}{
		{"", all, 1},
		{"openSource", []string{"openSource"}, 0},
		{"openHost", []string{"openSource", "openHost"}, 1},
		{"installPeerFilter", []string{"openSource", "openHost", "installPeerFilter", "closeHost"}, 1},
		{"setupDevice", []string{"openSource", "openHost", "installPeerFilter", "setupDevice", "closeHost"}, 1},
		{"acquireLease", []string{"openSource", "openHost", "installPeerFilter", "setupDevice", "acquireLease", "closeHost"}, 1},
		{"setupHost", []string{"openSource", "openHost", "installPeerFilter", "setupDevice", "acquireLease", "setupHost", "closeHost"}, 1},
		{"runLoops", all, 1},
	}
	for _, tc := range tests {
		t.Run("fail="+tc.fail, func(t *testing.T) {
			f := &fakeStartup{fail: tc.fail, src: &fakeSource{}}
			err := start(t.Context(), f)
			if tc.fail == "" && err != nil || tc.fail != "" && !errors.Is(err, errStep) {
				t.Errorf("start = %v", err)
			}
			if !slices.Equal(f.calls, tc.want) {
				t.Errorf("steps %v\nwant  %v", f.calls, tc.want)
			}
			if f.src.closed != tc.wantClosed {
				t.Errorf("lease source closed %d times, want %d", f.src.closed, tc.wantClosed)
			}
		})
	}
}

func TestStartIgnoresErrorsOfACancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, step := range []string{"openSource", "acquireLease"} {
		f := &fakeStartup{fail: step, err: context.Canceled, src: &fakeSource{}}
		if err := start(ctx, f); err != nil {
			t.Errorf("%s failing with the context's error: start = %v, want nil", step, err)
		}
	}
}

// closingRegistry is the fake registry with the Close a registry has.
type closingRegistry struct{ *subnettest.Registry }

func (closingRegistry) Close() error { return nil }

func TestEtcdPreviousVtepMACIsThatOfTheLeaseAcquireReuses(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := subnettest.NewClock(t0)
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ours, other := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.20")
	put := func(reg *subnettest.Registry, s string, ip netip.Addr, mac string, exp time.Time) {
		t.Helper()
		hw, _ := net.ParseMAC(mac)
		data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: hw}, true)
		if err != nil {
			t.Fatal(err)
		}
		l := subnet.Lease{Subnet: netip.MustParsePrefix(s), Expiration: exp,
			Attrs: subnet.LeaseAttrs{PublicIP: ip, BackendType: subnet.BackendVXLAN, BackendData: data}}
		if err := reg.PutLease(l); err != nil {
			t.Fatal(err)
		}
	}
	type lease struct {
		subnet string
		ip     netip.Addr
		mac    string
		exp    time.Time
	}
	tests := []struct {
		name    string
		leases  []lease
		wantMAC string
	}{
		{"none", []lease{{"10.5.1.0/24", other, "02:00:00:00:00:09", t0.Add(time.Hour)}}, ""},
		{"fitting beats misfit", []lease{
			{"10.6.1.0/24", ours, "02:00:00:00:00:01", t0.Add(time.Hour)},
			{"10.5.2.0/24", ours, "02:00:00:00:00:02", t0.Add(time.Hour)},
		}, "02:00:00:00:00:02"},
		{"reservation beats an earlier fitting lease", []lease{
			{"10.5.3.0/24", ours, "02:00:00:00:00:03", t0.Add(time.Hour)},
			{"10.5.4.0/24", ours, "02:00:00:00:00:04", time.Time{}},
		}, "02:00:00:00:00:04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := subnettest.NewRegistry(clock)
			for _, l := range tc.leases {
				put(reg, l.subnet, l.ip, l.mac, l.exp)
			}
			src := &etcdSource{reg: closingRegistry{reg}, etcdAPI: "v3", cfg: cfg, clock: clock,
				log: slog.New(slog.DiscardHandler)}
			mac := src.previousVtepMAC(t.Context(), ours)
			if got := macText(mac); got != tc.wantMAC {
				t.Fatalf("previous VTEP MAC %q, want %q", got, tc.wantMAC)
			}
			if mac == nil {
				return
			}
			// Acquire must reuse the lease whose MAC the device kept.
			data, _ := src.backendData(vxlandata.Data{VNI: 1, VtepMAC: mac})
			l, err := src.acquire(t.Context(), subnet.LeaseAttrs{PublicIP: ours, BackendType: subnet.BackendVXLAN, BackendData: data}, subnet.SubnetEnv{})
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range tc.leases {
				if in.mac == tc.wantMAC && in.subnet != l.Subnet.String() {
					t.Errorf("acquire reused %s, but the MAC kept is that of %s", l.Subnet, in.subnet)
				}
			}
			if src.Lease().Subnet != l.Subnet {
				t.Errorf("Lease() = %s after acquire, want %s", src.Lease().Subnet, l.Subnet)
			}
		})
	}
}

func macText(mac []byte) string {
	if len(mac) == 0 {
		return ""
	}
	return strings.ToLower(net.HardwareAddr(mac).String())
}

// TestEtcdSourceIdentityAndFence: the etcd source writes our node identity
// into the lease and refuses a lease with our PublicIP and another
// identity (no MAC reused, acquire fails); its RunRenewal fences: with
// every renewal failing, the lease expiring on the clock reaches the
// daemon's readiness through onLeaseExpired.
func TestEtcdSourceIdentityAndFence(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ours := netip.MustParseAddr("192.0.2.10")
	data, _ := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, true)
	attrs := subnet.LeaseAttrs{PublicIP: ours, BackendType: subnet.BackendVXLAN, BackendData: data}
	newSource := func(reg *subnettest.Registry, clock subnet.Clock, ready *readiness) *etcdSource {
		return &etcdSource{reg: closingRegistry{reg}, etcdAPI: "v3", cfg: cfg, clock: clock, log: slog.New(slog.DiscardHandler),
			nodeID: "aaaa", ttl: time.Minute, renewMargin: 20 * time.Second, onLeaseExpired: ready.setExpired}
	}

	clock := subnettest.NewClock(t0)
	reg := subnettest.NewRegistry(clock)
	theirs := attrs
	theirs.NodeID = "bbbb"
	if err := reg.PutLease(subnet.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), Attrs: theirs, Expiration: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var ready readiness
	src := newSource(reg, clock, &ready)
	if mac := src.previousVtepMAC(t.Context(), ours); mac != nil {
		t.Errorf("reused the MAC %s of another node's lease", macText(mac))
	}
	if _, err := src.acquire(t.Context(), attrs, subnet.SubnetEnv{}); !errors.Is(err, subnet.ErrPublicIPInUse) {
		t.Fatalf("acquire over another node's lease: %v, want ErrPublicIPInUse", err)
	}

	reg = subnettest.NewRegistry(clock)
	src = newSource(reg, clock, &ready)
	ready.set()
	l, err := src.acquire(t.Context(), attrs, subnet.SubnetEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := reg.Lease(l.Subnet); stored.Attrs.NodeID != "aaaa" {
		t.Errorf("stored identity %q, want ours", stored.Attrs.NodeID)
	}
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = errors.New("etcd unreachable")
	}
	reg.FailNext(subnettest.OpUpdate, errs...)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.RunRenewal(ctx) }()
	defer func() { cancel(); <-done }()
	if !clock.WaitForTimers(2, 5*time.Second) {
		t.Fatal("renewal and fence timers not armed")
	}
	clock.Advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for ready.isReady() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ready.isReady() || !strings.Contains(ready.notReadyReason(), "lease expired") {
		t.Errorf("ready %v (%s) after the lease expired without renewal", ready.isReady(), ready.notReadyReason())
	}
}

// TestEtcdSourceDropsTheStartList: the lease list read at start for the
// VTEP MAC is handed to the Manager and not kept by the source, so that
// it can be collected once the Manager's watch has taken it (at 100,000
// peers it is tens of MiB).
func TestEtcdSourceDropsTheStartList(t *testing.T) {
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ours := netip.MustParseAddr("192.0.2.10")
	reg := subnettest.NewRegistry(clock)
	data, _ := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: net.HardwareAddr{2, 0, 0, 0, 0, 7}}, true)
	peer := subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.20"), BackendType: subnet.BackendVXLAN, BackendData: data}
	if err := reg.PutLease(subnet.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24"), Attrs: peer, Expiration: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	src := &etcdSource{reg: closingRegistry{reg}, etcdAPI: "v3", cfg: cfg, clock: clock, log: slog.New(slog.DiscardHandler)}
	src.previousVtepMAC(t.Context(), ours)
	if src.startList == nil {
		t.Fatal("previousVtepMAC kept no start list for the Manager")
	}
	attrs := subnet.LeaseAttrs{PublicIP: ours, BackendType: subnet.BackendVXLAN, BackendData: data}
	if _, err := src.acquire(t.Context(), attrs, subnet.SubnetEnv{}); err != nil {
		t.Fatal(err)
	}
	if src.startList != nil {
		t.Errorf("the source still holds the start list (%d leases) after acquire", len(src.startList.Leases))
	}
}
