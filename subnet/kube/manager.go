package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/overlayd/overlayd/subnet"
)

// Manager publishes our lease in our Node's annotations and delivers the
// other nodes' leases; see the package doc. Its methods are those of
// subnet.Manager that the daemon uses.
type Manager struct {
	o       Options
	log     *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	lease subnet.Lease

	// ownChanged wakes RunRenewal when the watch sees our node change.
	ownChanged chan struct{}
}

// NewManager checks the options; nothing is read or written before
// Acquire.
func NewManager(o Options) (*Manager, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	var errs []error
	if o.Network.IsValid() && !o.Attrs.PublicIP.Is4() {
		errs = append(errs, fmt.Errorf("kube subnet manager: Attrs.PublicIP %s is not an IPv4 address", o.Attrs.PublicIP))
	}
	if o.IPv6Network.IsValid() && (!o.Attrs.PublicIPv6.Is6() || o.Attrs.PublicIPv6.Is4In6()) {
		errs = append(errs, fmt.Errorf("kube subnet manager: Attrs.PublicIPv6 %s is not an IPv6 address (IPv6Network %s is set)", o.Attrs.PublicIPv6, o.IPv6Network))
	}
	if o.Attrs.BackendType == "" {
		errs = append(errs, errors.New("kube subnet manager: Attrs.BackendType is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Manager{o: o, log: o.Logger, ownChanged: make(chan struct{}, 1)}
	var err error
	if m.metrics, err = newMetrics(o.Registerer); err != nil {
		return nil, err
	}
	return m, nil
}

// Acquire waits for our node's podCIDR (as WaitForNode does), publishes
// our lease in its annotations through nodes/status (only the annotations
// that differ are patched) and returns the lease: the podCIDR with Attrs,
// whose PublicIP is the node's public-ip-overwrite when set. Errors are
// logged and retried; only the end of ctx stops it.
func (m *Manager) Acquire(ctx context.Context) (subnet.Lease, error) {
	var lease subnet.Lease
	err := m.o.retrier().do(ctx, "publishing this node's lease in its annotations", func(ctx context.Context) error {
		n, own, err := m.o.readOwnNode(ctx)
		if err != nil {
			return err
		}
		attrs := m.publishedAttrs(own)
		if err := m.ensureAnnotations(ctx, n, attrs); err != nil {
			return err
		}
		lease = subnet.Lease{Subnet: own.PodCIDR, IPv6Subnet: own.IPv6PodCIDR, Attrs: attrs}
		return nil
	})
	if err != nil {
		return subnet.Lease{}, err
	}
	m.setLease(lease)
	args := []any{"node", m.o.NodeName, "subnet", lease.Subnet,
		"public_ip", lease.Attrs.PublicIP, "overwrite", lease.Attrs.PublicIP != m.o.Attrs.PublicIP}
	if lease.IPv6Subnet.IsValid() {
		args = append(args, "ipv6_subnet", lease.IPv6Subnet, "public_ipv6", lease.Attrs.PublicIPv6)
	}
	m.log.Info("lease published in the node's annotations", args...)
	return lease, nil
}

// publishedAttrs are Options.Attrs with the node's public-ip-overwrite
// and public-ipv6-overwrite.
func (m *Manager) publishedAttrs(own OwnNode) subnet.LeaseAttrs {
	attrs := m.o.Attrs
	if own.PublicIPOverwrite.IsValid() && m.o.Network.IsValid() {
		attrs.PublicIP = own.PublicIPOverwrite
	}
	if own.PublicIPv6Overwrite.IsValid() && m.o.IPv6Network.IsValid() {
		attrs.PublicIPv6 = own.PublicIPv6Overwrite
	}
	return attrs
}

// Lease returns our lease; zero before Acquire.
func (m *Manager) Lease() subnet.Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease
}

func (m *Manager) setLease(l subnet.Lease) {
	m.mu.Lock()
	m.lease = l
	m.mu.Unlock()
}

// pokeRenewal wakes RunRenewal without blocking.
func (m *Manager) pokeRenewal() {
	select {
	case m.ownChanged <- struct{}{}:
	default:
	}
}
