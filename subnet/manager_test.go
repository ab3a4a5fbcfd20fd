package subnet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const (
	ourIP    = "192.0.2.1"
	ourMAC   = "d6:87:b6:fa:f7:31"
	otherIP  = "192.0.2.2"
	otherMAC = "56:b3:03:00:ef:bd"
	wait     = 5 * time.Second // real-time bound on waits for goroutines
	cfg16    = `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`
	cfgSmall = `{"Network":"10.5.0.0/28","Backend":{"Type":"vxlan"}}` // /30s: .4 .8 .12
)

// testEnv is a fake registry and clock plus captured logs.
type testEnv struct {
	reg   *subnettest.Registry
	clock *subnettest.Clock
	cfg   *subnet.Config
	logs  *logtest.Buffer
	prom  *prometheus.Registry
}

func newEnv(t *testing.T, cfgJSON string) *testEnv {
	t.Helper()
	cfg, err := subnet.ParseConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	clock := subnettest.NewClock(t0)
	reg := subnettest.NewRegistry(clock)
	reg.SetConfig([]byte(cfgJSON))
	return &testEnv{reg: reg, clock: clock, cfg: cfg, logs: &logtest.Buffer{}, prom: prometheus.NewRegistry()}
}

func (e *testEnv) options() subnet.ManagerOptions {
	return subnet.ManagerOptions{
		Registry: e.reg, Config: e.cfg, Attrs: attrs(ourIP, ourMAC),
		Logger: e.logs.Logger(), Clock: e.clock, Rand: rand.New(rand.NewPCG(1, 2)),
		Registerer: e.prom,
	}
}

func (e *testEnv) manager(t *testing.T, edit ...func(*subnet.ManagerOptions)) *subnet.Manager {
	t.Helper()
	o := e.options()
	for _, f := range edit {
		f(&o)
	}
	m, err := subnet.NewManager(o)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func (e *testEnv) put(t *testing.T, subnetStr, ip, mac string, exp time.Time) subnet.Lease {
	t.Helper()
	l := subnet.Lease{Subnet: netip.MustParsePrefix(subnetStr), Attrs: attrs(ip, mac), Expiration: exp}
	if err := e.reg.PutLease(l); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.reg.Lease(l.Subnet)
	return stored
}

func attrs(ip, mac string) subnet.LeaseAttrs {
	return subnet.LeaseAttrs{
		PublicIP:    netip.MustParseAddr(ip),
		BackendType: "vxlan",
		BackendData: []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac)),
	}
}

// runner is a manager loop running in a goroutine.
type runner struct {
	t        *testing.T
	cancel   context.CancelFunc
	finished chan struct{}
	err      error
}

// run starts fn in a goroutine, stopped at the end of the test.
func run(t *testing.T, fn func(ctx context.Context) error) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{t: t, cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		r.err = fn(ctx)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the loop and returns its error.
func (r *runner) stop() error {
	r.cancel()
	return r.wait()
}

// wait returns the loop's error once it returns by itself.
func (r *runner) wait() error {
	select {
	case <-r.finished:
		return r.err
	case <-time.After(wait):
		r.t.Errorf("goroutine did not return")
		return nil
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewManagerValidates(t *testing.T) {
	e := newEnv(t, cfg16)
	v6only, err := subnet.ParseConfig([]byte(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*subnet.ManagerOptions)
		want string
	}{
		{"no registry", func(o *subnet.ManagerOptions) { o.Registry = nil }, "Registry is nil"},
		{"no config", func(o *subnet.ManagerOptions) { o.Config = nil }, "Config is nil"},
		{"IPv6 only", func(o *subnet.ManagerOptions) { o.Config = v6only }, "EnableIPv4 false"},
		{"no PublicIP", func(o *subnet.ManagerOptions) { o.Attrs.PublicIP = netip.Addr{} }, "Attrs.PublicIP"},
		{"margin too long", func(o *subnet.ManagerOptions) { o.TTL = time.Hour; o.RenewMargin = time.Hour }, "RenewMargin 1h0m0s must be shorter"},
		{"negative", func(o *subnet.ManagerOptions) { o.RenewRetry = -1 }, "negative duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := e.options()
			o.Registerer = nil
			tt.edit(&o)
			if _, err := subnet.NewManager(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewManager error %v, want %q", err, tt.want)
			}
		})
	}
	e.manager(t)
	if _, err := subnet.NewManager(e.options()); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Errorf("registering metrics twice: error %v", err)
	}
}

func TestAcquire(t *testing.T) {
	tests := []struct {
		name  string
		cfg   string
		setup func(t *testing.T, e *testEnv)
		prev  string
		check func(t *testing.T, e *testEnv, got subnet.Lease)
		logs  []string
	}{
		{
			name: "reuses our lease by PublicIP with our new attributes",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.7.0/24", ourIP, "02:00:00:00:00:01", t0.Add(time.Hour))
				e.put(t, "10.5.8.0/24", otherIP, otherMAC, t0.Add(time.Hour))
			},
			prev: "10.5.9.0/24",
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				wantSubnet(t, got, "10.5.7.0/24")
				wantStored(t, e, got.Subnet, attrs(ourIP, ourMAC), t0.Add(subnet.DefaultLeaseTTL))
			},
			logs: []string{"reusing our lease found by PublicIP", "subnet=10.5.7.0/24", "reservation=false"},
		},
		{
			name: "a reservation stays TTL-less",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.42.0/24", ourIP, "02:00:00:00:00:01", time.Time{})
			},
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				wantSubnet(t, got, "10.5.42.0/24")
				if !got.IsReservation() {
					t.Errorf("lease %+v is not a reservation", got)
				}
				wantStored(t, e, got.Subnet, attrs(ourIP, ourMAC), time.Time{})
			},
			logs: []string{"reusing our lease found by PublicIP", "reservation=true"},
		},
		{
			name: "a fitting reservation wins over another lease of ours",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.3.0/24", ourIP, ourMAC, t0.Add(time.Hour))
				e.put(t, "10.5.42.0/24", ourIP, ourMAC, time.Time{})
			},
			check: func(t *testing.T, e *testEnv, got subnet.Lease) { wantSubnet(t, got, "10.5.42.0/24") },
			logs:  []string{"another lease also carries our PublicIP"},
		},
		{
			name: "reuses the previous subnet when free",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.8.0/24", otherIP, otherMAC, t0.Add(time.Hour))
			},
			prev: "10.5.9.0/24",
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				wantSubnet(t, got, "10.5.9.0/24")
				wantStored(t, e, got.Subnet, attrs(ourIP, ourMAC), t0.Add(subnet.DefaultLeaseTTL))
			},
			logs: []string{"reusing the subnet of the previous subnet file", "subnet=10.5.9.0/24"},
		},
		{
			name: "previous subnet taken by someone else",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.9.0/24", otherIP, otherMAC, t0.Add(time.Hour))
			},
			prev: "10.5.9.0/24",
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				if got.Subnet == netip.MustParsePrefix("10.5.9.0/24") || !e.cfg.InRange(got.Subnet) {
					t.Errorf("got %v", got.Subnet)
				}
				wantStored(t, e, netip.MustParsePrefix("10.5.9.0/24"), attrs(otherIP, otherMAC), t0.Add(time.Hour))
			},
			logs: []string{"allocated a new subnet", "previous subnet 10.5.9.0/24 is held by 10.5.9.0/24 (PublicIP 192.0.2.2)"},
		},
		{
			name: "previous subnet outside the new config",
			cfg:  cfg16,
			prev: "10.6.9.0/24",
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				if !e.cfg.InRange(got.Subnet) {
					t.Errorf("got %v", got.Subnet)
				}
			},
			logs: []string{"previous subnet 10.6.9.0/24 does not fit the network config"},
		},
		{
			name: "config changed: our old lease is deleted and a new one allocated",
			cfg:  cfg16,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.6.7.0/24", ourIP, ourMAC, t0.Add(time.Hour)) // old network
				e.put(t, "10.5.7.0/25", ourIP, ourMAC, t0.Add(time.Hour)) // old SubnetLen
			},
			prev: "10.6.7.0/24",
			check: func(t *testing.T, e *testEnv, got subnet.Lease) {
				if !e.cfg.InRange(got.Subnet) {
					t.Errorf("got %v", got.Subnet)
				}
				for _, old := range []string{"10.6.7.0/24", "10.5.7.0/25"} {
					if _, ok := e.reg.Lease(netip.MustParsePrefix(old)); ok {
						t.Errorf("old lease %s not deleted", old)
					}
				}
				if n := len(e.reg.Leases()); n != 1 {
					t.Errorf("%d leases stored, want 1", n)
				}
			},
			logs: []string{"deleting our old lease: it no longer fits", "subnet=10.6.7.0/24", "subnet=10.5.7.0/25", "allocated a new subnet"},
		},
		{
			name: "new subnets skip every taken one",
			cfg:  cfgSmall,
			setup: func(t *testing.T, e *testEnv) {
				e.put(t, "10.5.0.4/30", otherIP, otherMAC, t0.Add(time.Hour))
				e.put(t, "10.5.0.12/30", "192.0.2.3", otherMAC, time.Time{})
			},
			check: func(t *testing.T, e *testEnv, got subnet.Lease) { wantSubnet(t, got, "10.5.0.8/30") },
			logs:  []string{"allocated a new subnet", "free_candidates=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			m := e.manager(t, func(o *subnet.ManagerOptions) {
				if tt.prev != "" {
					o.PreviousSubnet = netip.MustParsePrefix(tt.prev)
				}
			})
			got, err := m.Acquire(context.Background())
			if err != nil {
				t.Fatalf("Acquire: %v\nlogs:\n%s", err, e.logs)
			}
			if cur := m.Lease(); cur.Subnet != got.Subnet || !cur.Expiration.Equal(got.Expiration) {
				t.Errorf("Lease() = %+v, Acquire returned %+v", cur, got)
			}
			if !subnet.AttrsEqual(got.Attrs, attrs(ourIP, ourMAC)) {
				t.Errorf("lease attrs %+v", got.Attrs)
			}
			tt.check(t, e, got)
			e.logs.MustContain(t, tt.logs...)
		})
	}
}

func wantSubnet(t *testing.T, l subnet.Lease, want string) {
	t.Helper()
	if l.Subnet != netip.MustParsePrefix(want) {
		t.Errorf("subnet %v, want %s", l.Subnet, want)
	}
}

func wantStored(t *testing.T, e *testEnv, p netip.Prefix, a subnet.LeaseAttrs, exp time.Time) {
	t.Helper()
	l, ok := e.reg.Lease(p)
	if !ok {
		t.Fatalf("no lease %v stored", p)
	}
	if !subnet.AttrsEqual(l.Attrs, a) || !l.Expiration.Equal(exp) {
		t.Errorf("stored %v = %+v until %v, want %+v until %v", p, l.Attrs, l.Expiration, a, exp)
	}
}

func TestAcquireRaceLostThenRetried(t *testing.T) {
	e := newEnv(t, cfgSmall)
	m := e.manager(t, func(o *subnet.ManagerOptions) { o.PreviousSubnet = netip.MustParsePrefix("10.5.0.8/30") })
	stolen := map[netip.Prefix]bool{}
	e.reg.SetBeforeCreate(func(id subnet.LeaseID) {
		p := id.Subnet
		if len(stolen) < 2 && !stolen[p] {
			stolen[p] = true
			if err := e.reg.PutLease(subnet.Lease{Subnet: p, Attrs: attrs(otherIP, otherMAC)}); err != nil {
				t.Error(err)
			}
		}
	})
	got, err := m.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v\n%s", err, e.logs)
	}
	if stolen[got.Subnet] || !e.cfg.InRange(got.Subnet) {
		t.Errorf("got %v; stolen %v", got.Subnet, stolen)
	}
	if !stolen[netip.MustParsePrefix("10.5.0.8/30")] {
		t.Errorf("the previous subnet was not tried first: %v", stolen)
	}
	if n := e.reg.Calls(subnettest.OpCreate); n != 3 {
		t.Errorf("%d creates, want 3", n)
	}
	if n := e.logs.Count("another node created the same subnet first"); n != 2 {
		t.Errorf("%d race logs, want 2:\n%s", n, e.logs)
	}
	e.logs.MustContain(t, "another node took previous subnet 10.5.0.8/30 first")
}

func TestAcquireRaceLostEveryTime(t *testing.T) {
	e := newEnv(t, cfg16)
	m := e.manager(t)
	e.reg.SetBeforeCreate(func(id subnet.LeaseID) {
		p := id.Subnet
		_ = e.reg.PutLease(subnet.Lease{Subnet: p, Attrs: attrs(otherIP, otherMAC)})
	})
	_, err := m.Acquire(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lost the creation race 10 times") {
		t.Fatalf("Acquire error %v", err)
	}
}

func TestAcquireOutOfSubnets(t *testing.T) {
	e := newEnv(t, cfgSmall)
	e.put(t, "10.5.0.4/30", otherIP, otherMAC, t0.Add(time.Hour))
	e.put(t, "10.5.0.8/30", "192.0.2.3", otherMAC, time.Time{})
	// A malformed value under a valid key still holds its subnet.
	e.reg.PutRaw("10.5.0.12-30", `{"PublicIP":"bogus"}`)
	m := e.manager(t)
	_, err := m.Acquire(context.Background())
	if err == nil || !strings.Contains(err.Error(), "out of subnets") || !strings.Contains(err.Error(), "10.5.0.0/28") {
		t.Fatalf("Acquire error %v", err)
	}
	if n := e.reg.Calls(subnettest.OpCreate); n != 0 {
		t.Errorf("%d creates attempted", n)
	}
}

func TestAcquireRegistryErrors(t *testing.T) {
	boom := errors.New("etcd unavailable")
	tests := []struct {
		op   subnettest.Op
		want string
	}{
		{subnettest.OpList, "list leases"},
		{subnettest.OpCreate, "create lease"},
	}
	for _, tt := range tests {
		e := newEnv(t, cfg16)
		m := e.manager(t, func(o *subnet.ManagerOptions) { o.Registerer = nil })
		e.reg.FailNext(tt.op, boom)
		_, err := m.Acquire(context.Background())
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("op %d: Acquire error %v", tt.op, err)
		}
	}
}

func TestAcquireRandomAmongCandidates(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for seed := range uint64(20) {
		e := newEnv(t, cfg16)
		m := e.manager(t, func(o *subnet.ManagerOptions) { o.Rand = rand.New(rand.NewPCG(seed, seed)) })
		got, err := m.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Candidates are the first 100 free /24s from SubnetMin.
		if got.Subnet.Addr().Compare(netip.MustParseAddr("10.5.100.0")) > 0 || !e.cfg.InRange(got.Subnet) {
			t.Errorf("seed %d: %v is not among the first 100 candidates", seed, got.Subnet)
		}
		seen[got.Subnet] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 seeds gave only %d distinct subnets", len(seen))
	}
}

func TestFindOwnLease(t *testing.T) {
	e := newEnv(t, cfg16)
	m := e.manager(t)
	if _, ok, err := m.FindOwnLease(context.Background()); ok || err != nil {
		t.Fatalf("FindOwnLease on empty registry: %v %v", ok, err)
	}
	e.put(t, "10.5.8.0/24", otherIP, otherMAC, t0.Add(time.Hour))
	e.put(t, "10.6.7.0/24", ourIP, "02:00:00:00:00:01", t0.Add(time.Hour))
	l, ok, err := m.FindOwnLease(context.Background())
	if err != nil || !ok || l.Subnet != netip.MustParsePrefix("10.6.7.0/24") {
		t.Fatalf("FindOwnLease = %+v %v %v", l, ok, err)
	}
	e.put(t, "10.5.7.0/24", ourIP, "02:00:00:00:00:02", t0.Add(time.Hour))
	l, _, _ = m.FindOwnLease(context.Background())
	if l.Subnet != netip.MustParsePrefix("10.5.7.0/24") || !bytes.Contains(l.Attrs.BackendData, []byte("02:00:00:00:00:02")) {
		t.Errorf("FindOwnLease prefers %+v, want the fitting lease", l)
	}
	e.reg.FailNext(subnettest.OpList, errors.New("down"))
	if _, _, err := m.FindOwnLease(context.Background()); err == nil {
		t.Errorf("FindOwnLease hid a list error")
	}
}
