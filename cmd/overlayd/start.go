package main

import (
	"context"

	"github.com/overlayd/overlayd/subnet"
)

// startup is the daemon's start, one method a step. start calls them in
// flannel's order (the peer filter, overlayd's, before the device); *daemon implements them against etcd or Kubernetes,
// netlink and iptables, and the tests against a fake.
type startup interface {
	// openSource connects to the lease store (etcd, or the Kubernetes API)
	// and waits for the network config.
	openSource(ctx context.Context) (leaseSource, *subnet.Config, error)
	// openHost opens netlink, chooses the external interface and reads
	// the previous subnet file.
	openHost(cfg *subnet.Config) error
	// installPeerFilter puts the VXLAN peer filter in place when asked
	// (fail closed: an error ends the start), before the device exists to
	// carry traffic; without the flag it removes one an earlier run left.
	installPeerFilter(cfg *subnet.Config) error
	// setupDevice creates or adopts the VXLAN device, keeping the VTEP MAC
	// of the lease src will reuse.
	setupDevice(ctx context.Context, src leaseSource, cfg *subnet.Config) error
	// acquireLease publishes our lease through src.
	acquireLease(ctx context.Context, src leaseSource, cfg *subnet.Config) (subnet.Lease, error)
	// setupHost puts the device address, the iptables rules and the subnet
	// file in place and marks the daemon ready.
	setupHost(cfg *subnet.Config, lease subnet.Lease) error
	// runLoops runs peer sync, renewal and the resync loops until ctx ends.
	runLoops(ctx context.Context, src leaseSource, cfg *subnet.Config, lease subnet.Lease) error
	// closeHost releases what openHost opened (and nothing else: the
	// device, entries, rules, lease and subnet file stay in place).
	closeHost()
}

// start runs the steps of s in order until one fails or runLoops returns.
// The lease source is closed at the end, the host handles too once opened.
// Errors of a cancelled ctx (SIGTERM) are nil.
func start(ctx context.Context, s startup) error {
	src, cfg, err := s.openSource(ctx)
	if err != nil {
		return ignoreCanceled(ctx, err)
	}
	defer src.Close()
	if err := s.openHost(cfg); err != nil {
		return err
	}
	defer s.closeHost()
	if err := s.installPeerFilter(cfg); err != nil {
		return err
	}
	if err := s.setupDevice(ctx, src, cfg); err != nil {
		return err
	}
	lease, err := s.acquireLease(ctx, src, cfg)
	if err != nil {
		return ignoreCanceled(ctx, err)
	}
	if err := s.setupHost(cfg, lease); err != nil {
		return err
	}
	return s.runLoops(ctx, src, cfg, lease)
}
