package subnet

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"
)

// maxRecreateAttempts bounds re-creating our lease when it keeps vanishing.
const maxRecreateAttempts = 3

// RunRenewal renews our lease RenewMargin before it expires, retrying
// every RenewRetry on failure, until ctx ends (then it returns nil). A
// reservation (no TTL) is never renewed. A lease that vanished is
// re-created; if another node took the subnet meanwhile the error wraps
// ErrOwnLeaseLost.
func (m *Manager) RunRenewal(ctx context.Context) error {
	for {
		l, changed := m.leaseAndChange()
		if !l.ID().IsValid() {
			return errors.New("lease renewal: no lease: Acquire first")
		}
		if !m.waitRenewalDue(ctx, l, changed) {
			if ctx.Err() != nil {
				return nil
			}
			continue // the lease changed: reschedule
		}
		err := m.renewOnce(ctx, l)
		switch {
		case err == nil:
			continue
		case errors.Is(err, ErrOwnLeaseLost):
			return err
		case ctx.Err() != nil:
			return nil
		}
		m.log.Warn("lease renewal failed; will retry", "subnet", l.ID(), "error", err, "retry_in", m.renewRetry)
		m.waitOrChange(ctx, m.renewRetry, changed)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitRenewalDue blocks until l must be renewed (true), l changed or ctx
// ended (false). A reservation never falls due.
func (m *Manager) waitRenewalDue(ctx context.Context, l Lease, changed <-chan struct{}) bool {
	if l.IsReservation() {
		select {
		case <-changed:
		case <-ctx.Done():
		}
		return false
	}
	due := l.Expiration.Add(-m.renewMargin)
	wait := due.Sub(m.clock.Now())
	if wait <= 0 {
		return true
	}
	m.log.Debug("lease renewal scheduled", "subnet", l.ID(), "at", due, "expires", l.Expiration)
	return m.waitOrChange(ctx, wait, changed)
}

// waitOrChange sleeps d on the clock; false if changed or ctx came first.
func (m *Manager) waitOrChange(ctx context.Context, d time.Duration, changed <-chan struct{}) bool {
	t := m.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-changed:
		return false
	case <-ctx.Done():
		return false
	}
}

func (m *Manager) renewOnce(ctx context.Context, l Lease) error {
	want := Lease{Subnet: l.Subnet, IPv6Subnet: l.IPv6Subnet, Attrs: m.attrs, Expiration: l.Expiration}
	exp, err := m.reg.UpdateLease(ctx, want, m.ttl)
	switch {
	case errors.Is(err, ErrLeaseNotFound):
		m.metrics.renewals.WithLabelValues("recreated").Inc()
		return m.recreateOwnLease(ctx, l.ID(), "it vanished before renewal (expired or deleted)")
	case err != nil:
		m.metrics.renewals.WithLabelValues("error").Inc()
		return fmt.Errorf("renew lease %s: %w", l.ID(), err)
	}
	m.metrics.renewals.WithLabelValues("ok").Inc()
	want.Expiration = exp
	m.setLease(want)
	m.log.Info("renewed our lease", "subnet", l.ID(), "expires", exp)
	return nil
}

// recreateOwnLease re-creates our subnet atomically with our attributes.
// If it exists already and is ours (the other loop got there first), it
// is refreshed; if it is another node's, the error wraps ErrOwnLeaseLost.
func (m *Manager) recreateOwnLease(ctx context.Context, subnet LeaseID, why string) error {
	m.recreateMu.Lock()
	defer m.recreateMu.Unlock()
	m.log.Warn("our lease is gone; re-creating the same subnet", "subnet", subnet, "why", why)
	for attempt := 1; attempt <= maxRecreateAttempts; attempt++ {
		exp, err := m.reg.CreateLease(ctx, subnet, m.attrs, m.ttl)
		if err == nil {
			m.setLease(Lease{Subnet: subnet.Subnet, IPv6Subnet: subnet.IPv6Subnet, Attrs: m.attrs, Expiration: exp})
			m.log.Info("re-created our lease", "subnet", subnet, "expires", exp)
			return nil
		}
		if !errors.Is(err, ErrLeaseExists) {
			return fmt.Errorf("re-create lease %s: %w", subnet, err)
		}
		done, err := m.adoptExisting(ctx, subnet)
		if done || err != nil {
			return err
		}
	}
	return fmt.Errorf("re-create lease %s: it keeps vanishing and reappearing (%d attempts)", subnet, maxRecreateAttempts)
}

// adoptExisting handles a lost re-creation: ours → refresh it (done);
// another node's or malformed → ErrOwnLeaseLost; gone again → not done.
func (m *Manager) adoptExisting(ctx context.Context, subnet LeaseID) (bool, error) {
	list, err := m.reg.ListLeases(ctx)
	if err != nil {
		return false, fmt.Errorf("re-create lease %s: list leases: %w", subnet, err)
	}
	for _, l := range list.Leases {
		if l.ID() != subnet {
			continue
		}
		if !m.isOurs(l.Attrs) {
			m.log.Error("another node took our subnet", "subnet", subnet, "public_ip", OwnLeaseAddr(l.Attrs))
			return true, fmt.Errorf("%w: %s is now held by PublicIP %s", ErrOwnLeaseLost, subnet, OwnLeaseAddr(l.Attrs))
		}
		want := Lease{Subnet: subnet.Subnet, IPv6Subnet: subnet.IPv6Subnet, Attrs: m.attrs, Expiration: l.Expiration}
		exp, err := m.reg.UpdateLease(ctx, want, m.ttl)
		if errors.Is(err, ErrLeaseNotFound) {
			return false, nil
		}
		if err != nil {
			return true, fmt.Errorf("re-create lease %s: refresh: %w", subnet, err)
		}
		want.Expiration = exp
		m.setLease(want)
		return true, nil
	}
	for _, s := range list.Skipped {
		if id, err := ParseLeaseIDName(path.Base(s.Key)); err == nil && id == subnet {
			return true, fmt.Errorf("%w: %s now holds a malformed value: %v", ErrOwnLeaseLost, subnet, s.Reason)
		}
	}
	return false, nil
}
