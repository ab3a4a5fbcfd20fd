package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Subnet file retry delays: a read-only or full /run/flannel is retried
// from subnetFileRetryMin, doubling up to subnetFileRetryMax.
const (
	subnetFileRetryMin = time.Second
	subnetFileRetryMax = 10 * time.Second
)

// subnetFile writes the subnet file once the lease is known. A failed
// write (a read-only or full /run/flannel) does not end the daemon: the
// old file stays (writes are atomic), the data path runs, /readyz
// answers 503, and run retries until the file is written.
type subnetFile struct {
	path  string
	env   subnet.SubnetEnv
	ready *readiness
	log   *slog.Logger
	// lastErr is the cause of the last failure logged, so that a
	// repeated one is not.
	lastErr string
}

// subnetEnv is the subnet file for our lease, as flanneld writes it: the
// IPv4 pair when IPv4 is on, the FLANNEL_IPV6_NETWORK / FLANNEL_IPV6_SUBNET
// pair when IPv6 is on (docs/compatibility.md, "IPv6 and dual-stack").
func subnetEnv(cfg *subnet.Config, lease subnet.Lease, mtu int, ipMasq bool) subnet.SubnetEnv {
	env := subnet.SubnetEnv{MTU: mtu, IPMasq: ipMasq}
	if cfg.EnableIPv4 {
		env.Network, env.Subnet = cfg.Network, lease.Subnet
	}
	if cfg.EnableIPv6 {
		env.IPv6Network, env.IPv6Subnet = cfg.IPv6Network, lease.IPv6Subnet
	}
	return env
}

// write tries once; on success it marks the daemon ready.
func (f *subnetFile) write() bool {
	err := subnet.WriteSubnetFile(f.path, f.env)
	if err == nil {
		f.ready.set()
		args := []any{"path", f.path, "subnet", f.env.Subnet, "mtu", f.env.MTU}
		if f.env.IPv6Subnet.IsValid() {
			args = append(args, "ipv6_subnet", f.env.IPv6Subnet)
		}
		f.log.Info("subnet file written", args...)
		return true
	}
	// The message names a random temporary file: compare the root cause.
	if cause := rootCause(err).Error(); cause != f.lastErr {
		f.lastErr = cause
		f.log.Error("cannot write the subnet file; not ready until it is written, retrying", "path", f.path, "err", err)
	}
	return false
}

// run retries write with backoff until it succeeds or ctx ends; it
// returns at once when the file is already written.
func (f *subnetFile) run(ctx context.Context) error {
	delay := subnetFileRetryMin
	for !f.ready.fileWritten() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		if f.write() {
			return nil
		}
		delay = min(2*delay, subnetFileRetryMax)
	}
	return nil
}

// rootCause is the innermost error err wraps.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// removeStaleSubnetTemps deletes what a SIGKILL during a subnet file
// write left behind; a failure is only logged.
func removeStaleSubnetTemps(path string, log *slog.Logger) {
	removed, err := subnet.RemoveStaleTemps(path)
	for _, name := range removed {
		log.Info("removed a temporary file left by an interrupted write", "path", name)
	}
	if err != nil {
		log.Warn("could not remove temporary files left by an interrupted write", "err", err)
	}
}
