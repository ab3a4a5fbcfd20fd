package subnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/metrictest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// acquired returns a manager holding a fresh lease at t0 (expiring t0+24h).
func acquired(t *testing.T, e *testEnv, edit ...func(*subnet.ManagerOptions)) (*subnet.Manager, subnet.Lease) {
	t.Helper()
	m := e.manager(t, edit...)
	l, err := m.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return m, l
}

// nextTimer waits for the manager to arm a timer and returns its deadline.
func nextTimer(t *testing.T, e *testEnv) time.Time {
	t.Helper()
	if !e.clock.WaitForTimers(1, wait) {
		t.Fatalf("no timer armed")
	}
	d, _ := e.clock.NextDeadline()
	return d
}

func TestRenewalTiming(t *testing.T) {
	e := newEnv(t, cfg16)
	m, l := acquired(t, e)
	r := run(t, m.RunRenewal)

	for round := 1; round <= 3; round++ {
		due := nextTimer(t, e)
		if want := l.Expiration.Add(-subnet.DefaultRenewMargin); !due.Equal(want) {
			t.Fatalf("round %d: renewal at %v, want %v (expiry minus 60m)", round, due, want)
		}
		e.clock.Advance(due.Sub(e.clock.Now()))
		wantExp := due.Add(subnet.DefaultLeaseTTL)
		eventually(t, "renewal", func() bool { return m.Lease().Expiration.Equal(wantExp) })
		wantStored(t, e, l.Subnet, attrs(ourIP, ourMAC), wantExp)
		l = m.Lease()
	}
	if err := r.stop(); err != nil {
		t.Errorf("RunRenewal returned %v", err)
	}
	if v := metricValue(t, e, "overlayd_subnet_lease_renewals_total", prometheus.Labels{"result": "ok"}); v != 3 {
		t.Errorf("renewals ok = %v, want 3", v)
	}
	if v := metricValue(t, e, "overlayd_subnet_lease_expiration_timestamp_seconds", nil); v != float64(l.Expiration.Unix()) {
		t.Errorf("expiration gauge = %v, want %v", v, l.Expiration.Unix())
	}
	e.logs.MustContain(t, "renewed our lease")
}

func TestRenewalCustomMarginAndRetry(t *testing.T) {
	e := newEnv(t, cfg16)
	m, l := acquired(t, e, func(o *subnet.ManagerOptions) {
		o.TTL, o.RenewMargin, o.RenewRetry = time.Hour, 10*time.Minute, 30*time.Second
	})
	if !l.Expiration.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expiration %v", l.Expiration)
	}
	run(t, m.RunRenewal)
	e.reg.FailNext(subnettest.OpUpdate, errors.New("etcd unavailable"), errors.New("etcd unavailable"))

	due := nextTimer(t, e)
	if want := t0.Add(50 * time.Minute); !due.Equal(want) {
		t.Fatalf("renewal at %v, want %v", due, want)
	}
	e.clock.Advance(due.Sub(e.clock.Now()))
	for i := range 2 { // two failures, each followed by a retry timer
		retry := nextTimer(t, e)
		if want := e.clock.Now().Add(30 * time.Second); !retry.Equal(want) {
			t.Fatalf("retry %d at %v, want %v", i, retry, want)
		}
		e.clock.Advance(30 * time.Second)
	}
	want := t0.Add(51 * time.Minute).Add(time.Hour)
	eventually(t, "renewal after retries", func() bool { return m.Lease().Expiration.Equal(want) })
	if n := e.logs.Count("lease renewal failed; will retry"); n != 2 {
		t.Errorf("%d failure logs, want 2", n)
	}
	if v := metricValue(t, e, "overlayd_subnet_lease_renewals_total", prometheus.Labels{"result": "error"}); v != 2 {
		t.Errorf("renewal errors = %v, want 2", v)
	}
}

func TestRenewalReservationNeverRenewed(t *testing.T) {
	e := newEnv(t, cfg16)
	e.put(t, "10.5.42.0/24", ourIP, ourMAC, time.Time{})
	m, l := acquired(t, e)
	if !l.IsReservation() {
		t.Fatalf("lease %+v is not a reservation", l)
	}
	updates := e.reg.Calls(subnettest.OpUpdate)
	r := run(t, m.RunRenewal)
	if e.clock.WaitForTimers(1, 50*time.Millisecond) {
		t.Fatalf("a timer was armed for a reservation")
	}
	e.clock.Advance(100 * 24 * time.Hour)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := e.reg.Calls(subnettest.OpUpdate); n != updates {
		t.Errorf("%d updates during renewal of a reservation", n-updates)
	}
	wantStored(t, e, l.Subnet, attrs(ourIP, ourMAC), time.Time{})
	if v := metricValue(t, e, "overlayd_subnet_lease_expiration_timestamp_seconds", nil); v != 0 {
		t.Errorf("expiration gauge = %v for a reservation", v)
	}
}

func TestRenewalRecreatesVanishedLease(t *testing.T) {
	e := newEnv(t, cfg16)
	m, l := acquired(t, e)
	run(t, m.RunRenewal)
	due := nextTimer(t, e)
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: l.Subnet}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(due.Sub(e.clock.Now()))
	want := due.Add(subnet.DefaultLeaseTTL)
	eventually(t, "re-creation", func() bool { return m.Lease().Expiration.Equal(want) })
	wantStored(t, e, l.Subnet, attrs(ourIP, ourMAC), want)
	e.logs.MustContain(t, "our lease is gone; re-creating the same subnet", "re-created our lease")
}

func TestRenewalLeaseTakenByAnotherNode(t *testing.T) {
	e := newEnv(t, cfg16)
	m, l := acquired(t, e)
	r := run(t, m.RunRenewal)
	due := nextTimer(t, e)
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: l.Subnet}); err != nil {
		t.Fatal(err)
	}
	// Another node takes the subnet just before we re-create it.
	e.reg.SetBeforeCreate(func(id subnet.LeaseID) {
		p := id.Subnet
		_ = e.reg.PutLease(subnet.Lease{Subnet: p, Attrs: attrs(otherIP, otherMAC)})
	})
	e.clock.Advance(due.Sub(e.clock.Now()))
	if err := r.wait(); !errors.Is(err, subnet.ErrOwnLeaseLost) {
		t.Fatalf("RunRenewal returned %v, want ErrOwnLeaseLost", err)
	}
}

func TestRenewalNeedsLease(t *testing.T) {
	e := newEnv(t, cfg16)
	if err := e.manager(t).RunRenewal(context.Background()); err == nil {
		t.Fatal("RunRenewal without a lease succeeded")
	}
}

// metricValue reads a counter or gauge (the series with the given labels,
// or the first) from the test's Prometheus registry, 0 when absent.
func metricValue(t *testing.T, e *testEnv, name string, labels prometheus.Labels) float64 {
	t.Helper()
	v, _ := metrictest.Lookup(t, e.prom, name, labels)
	return v
}
