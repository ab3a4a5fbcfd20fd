package subnettest_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/registrytest"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// The fake passes the same conformance suite as the etcd registries.
func TestConformance(t *testing.T) {
	registrytest.Run(t, fakeEnv)
	t.Run("IPv6", func(t *testing.T) { registrytest.RunIPv6(t, fakeEnv) })
}

func fakeEnv(t *testing.T) registrytest.Env {
	reg := subnettest.NewRegistry(nil)
	// Real time: expire leases as etcd would, without waiting for a call.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				reg.Expire()
			case <-ctx.Done():
				return
			}
		}
	}()
	return registrytest.Env{
		Registry: reg,
		Prefix:   subnet.DefaultPrefix,
		PutRaw: func(key, value string) error {
			if key == subnet.ConfigKey(subnet.DefaultPrefix) {
				reg.SetConfig([]byte(value))
				return nil
			}
			name, ok := strings.CutPrefix(key, subnet.SubnetsDir(subnet.DefaultPrefix))
			if !ok {
				return errors.New("key outside the fake's keyspace: " + key)
			}
			reg.PutRaw(name, value)
			return nil
		},
		LoseHistory: func() error { reg.Compact(); return nil },
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func lease(s, ip string) subnet.Lease {
	return subnet.Lease{
		Subnet: netip.MustParsePrefix(s),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(ip), BackendType: "vxlan",
			BackendData: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}`)},
	}
}

func TestRegistryTTLOnFakeClock(t *testing.T) {
	clock := subnettest.NewClock(t0)
	reg := subnettest.NewRegistry(clock)
	ctx := context.Background()
	l := lease("10.5.1.0/24", "192.0.2.1")
	exp, err := reg.CreateLease(ctx, subnet.LeaseID{Subnet: l.Subnet}, l.Attrs, time.Hour)
	if err != nil || !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("CreateLease = %v, %v", exp, err)
	}
	if _, err := reg.CreateLease(ctx, subnet.LeaseID{Subnet: l.Subnet}, l.Attrs, time.Hour); !errors.Is(err, subnet.ErrLeaseExists) {
		t.Fatalf("second create: %v", err)
	}
	clock.Advance(59 * time.Minute)
	if list, _ := reg.ListLeases(ctx); len(list.Leases) != 1 {
		t.Fatalf("lease expired early")
	}
	clock.Advance(time.Minute)
	list, _ := reg.ListLeases(ctx)
	if len(list.Leases) != 0 {
		t.Fatalf("lease did not expire: %+v", list.Leases)
	}
	if _, err := reg.UpdateLease(ctx, l, time.Hour); !errors.Is(err, subnet.ErrLeaseNotFound) {
		t.Fatalf("update after expiry: %v", err)
	}
	// create, expire: two revisions.
	if list.Revision != 2 {
		t.Errorf("revision %d, want 2", list.Revision)
	}
}

func TestRegistryFaultsAndCalls(t *testing.T) {
	reg := subnettest.NewRegistry(subnettest.NewClock(t0))
	ctx := context.Background()
	boom := errors.New("boom")
	reg.FailNext(subnettest.OpList, nil, boom)
	if _, err := reg.ListLeases(ctx); err != nil {
		t.Fatalf("first list: %v", err)
	}
	if _, err := reg.ListLeases(ctx); !errors.Is(err, boom) {
		t.Fatalf("second list: %v", err)
	}
	if _, err := reg.ListLeases(ctx); err != nil {
		t.Fatalf("third list: %v", err)
	}
	if n := reg.Calls(subnettest.OpList); n != 3 {
		t.Errorf("calls %d", n)
	}
	if _, err := reg.GetNetworkConfig(ctx); !errors.Is(err, subnet.ErrConfigNotFound) {
		t.Errorf("config: %v", err)
	}
}

func TestRegistryWatchHoldAndBreak(t *testing.T) {
	reg := subnettest.NewRegistry(subnettest.NewClock(t0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan subnet.WatchBatch, 16)
	done := make(chan error, 1)
	go func() { done <- reg.WatchLeases(ctx, 0, out) }()

	reg.HoldWatches(true)
	if err := reg.PutLease(lease("10.5.1.0/24", "192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-out:
		t.Fatalf("delivered while held: %+v", b)
	case <-time.After(20 * time.Millisecond):
	}
	reg.HoldWatches(false)
	select {
	case b := <-out:
		if len(b.Events) != 1 || b.Revision != 1 || b.Events[0].Type != subnet.EventAdded {
			t.Fatalf("batch %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
	broken := errors.New("connection reset")
	for reg.Watchers() != 1 {
		time.Sleep(time.Millisecond)
	}
	reg.BreakWatches(broken)
	select {
	case err := <-done:
		if !errors.Is(err, broken) {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch not broken")
	}
}

func TestClock(t *testing.T) {
	c := subnettest.NewClock(t0)
	a, b := c.NewTimer(time.Minute), c.NewTimer(time.Second)
	now := c.NewTimer(0)
	select {
	case <-now.C():
	default:
		t.Fatal("zero timer did not fire at once")
	}
	if c.Pending() != 2 {
		t.Fatalf("pending %d", c.Pending())
	}
	if step, ok := c.AdvanceToNext(time.Second); !ok || step != time.Second {
		t.Fatalf("AdvanceToNext = %v, %v", step, ok)
	}
	select {
	case got := <-b.C():
		if !got.Equal(t0.Add(time.Second)) {
			t.Errorf("fired at %v", got)
		}
	default:
		t.Fatal("timer b did not fire")
	}
	if !a.Stop() || a.Stop() || c.Pending() != 0 {
		t.Errorf("Stop semantics wrong")
	}
	c.Advance(time.Hour)
	select {
	case <-a.C():
		t.Error("stopped timer fired")
	default:
	}
	if c.WaitForTimers(1, 10*time.Millisecond) {
		t.Error("WaitForTimers true with no timers")
	}
}
