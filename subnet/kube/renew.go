package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// RunRenewal keeps our lease in place until ctx ends (then it returns
// nil): it sets the NetworkUnavailable=False condition (the node is ready:
// the daemon starts renewal after writing the subnet file), and whenever
// the watch sees our node change, or every RecheckInterval, re-reads the
// node and re-patches our annotations or the condition if someone removed
// or changed them. A changed public-ip-overwrite is published and becomes
// the lease's PublicIP. If our podCIDR changed (the Node was re-created)
// the error wraps subnet.ErrOwnLeaseLost: the kernel state is built on the
// old subnet, so the daemon must restart.
func (m *Manager) RunRenewal(ctx context.Context) error {
	if !m.Lease().ID().IsValid() {
		return errors.New("kube lease renewal: no lease: Acquire first")
	}
	var lastErr string
	for {
		err := m.recheck(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, subnet.ErrOwnLeaseLost):
			return err
		}
		wait := m.o.RecheckInterval
		if err != nil {
			if err.Error() != lastErr {
				m.log.Warn("could not check our node's annotations and condition; retrying", "err", err, "retry_in", m.o.RetryInterval)
			}
			lastErr, wait = err.Error(), m.o.RetryInterval
		} else if lastErr != "" {
			m.log.Info("our node's annotations and condition are in place again")
			lastErr = ""
		}
		if !m.waitRecheck(ctx, wait) {
			return nil
		}
	}
}

// waitRecheck waits d or until our node changed; false when ctx ended.
func (m *Manager) waitRecheck(ctx context.Context, d time.Duration) bool {
	t := m.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-m.ownChanged:
	case <-ctx.Done():
		return false
	}
	return true
}

// recheck re-reads our node and puts back what is missing.
func (m *Manager) recheck(ctx context.Context) error {
	n, own, err := m.o.readOwnNode(ctx)
	if err != nil {
		return err
	}
	lease := m.Lease()
	if now := (subnet.LeaseID{Subnet: own.PodCIDR, IPv6Subnet: own.IPv6PodCIDR}); now != lease.ID() {
		return fmt.Errorf("node %q podCIDR is now %s, our lease and kernel state are for %s (was the Node re-created?); restart to use the new subnet: %w",
			n.Name, now, lease.ID(), subnet.ErrOwnLeaseLost)
	}
	attrs := m.publishedAttrs(own)
	if err := m.ensureAnnotations(ctx, n, attrs); err != nil {
		return err
	}
	if attrs.PublicIP != lease.Attrs.PublicIP || attrs.PublicIPv6 != lease.Attrs.PublicIPv6 {
		m.log.Warn("our advertised address changed with the node's public-ip-overwrite or public-ipv6-overwrite annotation; peers follow it",
			"node", n.Name, "old", lease.Attrs.PublicIP, "new", attrs.PublicIP, "old_ipv6", lease.Attrs.PublicIPv6, "new_ipv6", attrs.PublicIPv6)
		lease.Attrs = attrs
		m.setLease(lease)
	}
	return m.ensureCondition(ctx, n)
}
