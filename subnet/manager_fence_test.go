package subnet_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// expiryLog records OnLeaseExpired calls.
type expiryLog struct {
	mu    sync.Mutex
	calls []bool
}

func (x *expiryLog) record(expired bool) {
	x.mu.Lock()
	x.calls = append(x.calls, expired)
	x.mu.Unlock()
}

func (x *expiryLog) get() []bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.calls)
}

// fenced is a manager holding an hour's lease, renewed 10 minutes before
// it expires, recording OnLeaseExpired calls, with RunFence running.
func fenced(t *testing.T) (*testEnv, *subnet.Manager, subnet.Lease, *expiryLog) {
	t.Helper()
	e := newEnv(t, cfg16)
	calls := &expiryLog{}
	m, l := acquired(t, e, func(o *subnet.ManagerOptions) {
		o.TTL, o.RenewMargin, o.OnLeaseExpired = time.Hour, 10*time.Minute, calls.record
	})
	run(t, m.RunFence)
	return e, m, l, calls
}

const expiredLine = "our lease expired without a successful renewal"

// TestFenceMarksExpiredLease steps a fake clock past our lease's expiry
// with no renewal: the lease is marked expired once (gauge, callback,
// one ERROR line however long it lasts); a later successful renewal (here
// a re-creation, the store having expired the lease too) clears it.
func TestFenceMarksExpiredLease(t *testing.T) {
	e, m, l, calls := fenced(t)
	if due := nextTimer(t, e); !due.Equal(l.Expiration) {
		t.Fatalf("fence timer at %v, want the expiry %v", due, l.Expiration)
	}
	e.clock.Advance(time.Hour - time.Second)
	if m.LeaseExpired() || metricValue(t, e, "overlayd_subnet_lease_expired", nil) != 0 {
		t.Fatal("expired a second early")
	}
	e.clock.Advance(time.Second)
	eventually(t, "expired mark", m.LeaseExpired)
	e.clock.Advance(time.Hour)
	if v := metricValue(t, e, "overlayd_subnet_lease_expired", nil); v != 1 {
		t.Errorf("gauge %v, want 1", v)
	}
	if n := e.logs.Count(expiredLine); n != 1 {
		t.Errorf("%d expiry lines, want 1:\n%s", n, e.logs)
	}
	e.logs.MustContain(t, "level=ERROR", "subnet=10.5.")

	run(t, m.RunRenewal) // overdue: renews (re-creates) at once
	eventually(t, "valid again", func() bool { return !m.LeaseExpired() })
	if v := metricValue(t, e, "overlayd_subnet_lease_expired", nil); v != 0 {
		t.Errorf("gauge %v after renewal, want 0", v)
	}
	if got := calls.get(); !slices.Equal(got, []bool{true, false}) {
		t.Errorf("OnLeaseExpired calls %v, want [true false]", got)
	}
	e.logs.MustContain(t, "our lease is valid again after it had expired")
}

// TestFenceQuietWhileRenewed: renewals that succeed keep the lease from
// ever being marked expired.
func TestFenceQuietWhileRenewed(t *testing.T) {
	e, m, l, calls := fenced(t)
	run(t, m.RunRenewal)
	for round := 1; round <= 3; round++ {
		if !e.clock.WaitForTimers(2, wait) {
			t.Fatalf("round %d: timers not armed", round)
		}
		e.clock.AdvanceToNext(wait)
		eventually(t, "renewal", func() bool { return m.Lease().Expiration.After(l.Expiration) })
		l = m.Lease()
	}
	if m.LeaseExpired() || len(calls.get()) != 0 || e.logs.Count(expiredLine) != 0 {
		t.Errorf("expired while renewed: calls %v", calls.get())
	}
}
