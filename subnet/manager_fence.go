package subnet

import (
	"context"
	"time"
)

// RunFence watches our lease's expiry on the local clock until ctx ends.
// When the clock passes the expiry without a successful renewal (etcd
// unreachable for longer than the lease had left), another node may be
// given our subnet: the lease is marked expired (LeaseExpired, the
// overlayd_subnet_lease_expired gauge, OnLeaseExpired, one ERROR line).
// Nothing is torn down: kernel entries stay and traffic keeps flowing.
// A renewal or re-creation that succeeds later clears the mark. Run it
// beside RunRenewal.
func (m *Manager) RunFence(ctx context.Context) error {
	for {
		l, changed := m.leaseAndChange()
		// No lease yet, or a reservation: no expiry to watch.
		timed := l.ID().IsValid() && !l.IsReservation()
		var left time.Duration
		if timed {
			left = l.Expiration.Sub(m.clock.Now())
		}
		m.setExpired(timed && left <= 0, l)
		if left > 0 {
			m.waitOrChange(ctx, left, changed)
		} else {
			select {
			case <-changed:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// LeaseExpired reports whether our lease's expiry passed on the local
// clock without a successful renewal since. Goroutine-safe.
func (m *Manager) LeaseExpired() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expired
}

// setExpired records a change of the expired mark: one log line, the
// gauge and the callback, on transitions only.
func (m *Manager) setExpired(expired bool, l Lease) {
	m.mu.Lock()
	was := m.expired
	m.expired = expired
	m.mu.Unlock()
	if was == expired {
		return
	}
	if expired {
		m.metrics.leaseExpired.Set(1)
		m.log.Error("our lease expired without a successful renewal: another node may be given our subnet; not ready until it is renewed (kernel entries stay)",
			"subnet", l.ID(), "expired_at", l.Expiration)
	} else {
		m.metrics.leaseExpired.Set(0)
		m.log.Info("our lease is valid again after it had expired; ready", "subnet", l.ID(), "expires", l.Expiration)
	}
	if m.onExpired != nil {
		m.onExpired(expired)
	}
}
