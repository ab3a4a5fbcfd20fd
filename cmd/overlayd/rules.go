package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/nftrules"
	"github.com/overlayd/overlayd/subnet"
)

// The daemon programs packet filtering in one of two modes, chosen by the
// network config's EnableNFTables: iptables (package iptables) or nftables
// (package nftrules). This file is the only place that chooses; the rest of
// the daemon sees the interfaces below. Each mode removes what the other
// left (docs/nftables.md, "Switching modes").

// rulesKeeper is the masquerade and forward rules of either mode.
type rulesKeeper interface {
	Ensure() error
	Run(ctx context.Context) error
	Status() iptables.Status
}

// vxlanFilter is the VXLAN peer filter of either mode.
type vxlanFilter interface {
	peerSetter
	// Install puts the filter in place before any peer is known (fail
	// closed; peerfilter_start.go).
	Install() error
	Run(ctx context.Context, every time.Duration) error
}

// exemptionKeeper keeps the outer-VXLAN NAT exemption in place.
type exemptionKeeper interface {
	Run(ctx context.Context) error
}

// newRules builds the rules of the configured mode after removing the other
// mode's (in the iptables mode, iptables and, with EnableIPv6, ip6tables:
// rules6.go); it installs nothing yet.
func (d *daemon) newRules(cfg *subnet.Config, lease subnet.Lease, prev subnet.SubnetEnv) (rulesKeeper, error) {
	o := d.opts
	if cfg.EnableNFTables {
		return d.newNFTRules(cfg, lease, prev) // rulesnft.go
	}
	if err := checkIPTables(o.vxlanPeerFilter); err != nil {
		return nil, err
	}
	removeNFTablesMode(d.log)
	var v4 rulesKeeper
	if hasIPv4(cfg) { // rules6.go
		runner, err := iptables.NewRunner(false)
		if err != nil {
			return nil, fmt.Errorf("iptables: %w", err)
		}
		m, err := iptables.NewManager(iptables.Options{
			Runner: runner, Network: cfg.Network, PodSubnet: lease.Subnet,
			Masquerade: o.ipMasq, ForwardRules: o.forwardRules,
			RandomFullyDisabled: o.randomFullyOff,
			PrevNetwork:         prev.Network, PrevSubnet: prev.Subnet,
			Resync: o.iptablesResync, Logger: d.log, Registerer: d.familyRegisterer(cfg, "ipv4"), // ipv6plane.go
		})
		if err != nil {
			return nil, fmt.Errorf("iptables: %w", err)
		}
		v4 = m
	}
	v6, err := d.newRules6(cfg, lease, prev) // rules6.go
	if err != nil {
		return nil, err
	}
	return joinRules(v4, v6), nil
}

// checkRulesMode fails at start, before the device and the lease, when the
// configured mode cannot work on this host.
func (d *daemon) checkRulesMode(cfg *subnet.Config) error {
	if err := checkIPv6RulesMode(cfg); err != nil { // rules6.go
		return err
	}
	if !cfg.EnableNFTables {
		return checkIPTables(d.opts.vxlanPeerFilter)
	}
	k, err := nftrules.NewNetlinkKernel(0)
	if err == nil {
		defer k.Close()
		_, err = k.Table(nftables.TableFamilyIPv4, nftrules.FlannelTable4)
	}
	if err != nil {
		return fmt.Errorf("EnableNFTables: the kernel's nftables is not usable (module nf_tables missing?): %w", err)
	}
	return nil
}

// checkIPTables fails when the iptables mode cannot work on this host,
// naming what is missing and pointing at EnableNFTables.
func checkIPTables(needIPSet bool) error {
	const hint = `; on a host without iptables set "EnableNFTables": true in the network config`
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables mode: the iptables binary is not in PATH (%s)%s", os.Getenv("PATH"), hint)
	}
	runner, err := iptables.NewRunner(false)
	if err == nil {
		_, err = runner.List("nat", "POSTROUTING")
	}
	if err != nil {
		return fmt.Errorf("iptables mode: iptables cannot use the nat table (kernel module ip_tables/iptable_nat, or nf_tables for iptables-nft, missing or the iptables backend unusable): %w%s", err, hint)
	}
	if _, err := exec.LookPath("ipset"); needIPSet && err != nil {
		return fmt.Errorf("iptables mode: --vxlan-peer-filter needs the ipset binary, not in PATH (%s)%s", os.Getenv("PATH"), hint)
	}
	return nil
}

// removeIPTablesMode removes the iptables mode's chains and sets (ours and
// flanneld's), when iptables is there to ask.
func removeIPTablesMode(log *slog.Logger) {
	if _, err := exec.LookPath("iptables"); err != nil {
		log.Debug("nftables mode: no iptables binary, no iptables rules to remove")
		return
	}
	runner, err := iptables.NewRunner(false)
	if err == nil {
		err = iptables.RemoveAll(runner, nil)
	}
	if err != nil {
		log.Warn("nftables mode: could not remove every iptables rule of the iptables mode", "err", err)
	}
}

// removeNFTablesMode removes the nftables mode's tables (ours and
// flanneld's). A kernel without nf_tables has none.
func removeNFTablesMode(log *slog.Logger) {
	k, err := nftrules.NewNetlinkKernel(0)
	if err != nil {
		log.Debug("iptables mode: no nftables, no tables to remove", "err", err)
		return
	}
	defer k.Close()
	names, err := nftrules.RemoveAll(k)
	switch {
	case err != nil && !nftrules.IsUnsupported(err):
		log.Warn("iptables mode: could not remove the nftables mode's tables", "err", err)
	case len(names) > 0:
		log.Info("iptables mode: removed the nftables mode's tables", "tables", names)
	}
}

// newPeerFilter builds the peer filter of the configured mode (in the
// iptables mode, one per family the config serves), or removes a filter
// an earlier run left and returns nil when --vxlan-peer-filter is off.
func (d *daemon) newPeerFilter(cfg *subnet.Config) (vxlanFilter, error) {
	port := vxlanPort(cfg)
	if cfg.EnableNFTables {
		return d.newNFTPeerFilter(cfg) // rulesnft.go
	}
	var v4 vxlanFilter
	if hasIPv4(cfg) {
		f, err := d.newPeerFilter4(port, d.familyRegisterer(cfg, "ipv4"))
		if err != nil {
			return nil, err
		}
		if f != nil { // a nil *PeerFilter must not become a non-nil vxlanFilter
			v4 = f
		}
	}
	v6, err := d.newPeerFilter6(cfg) // rules6.go
	if err != nil {
		return nil, err
	}
	return joinFilters(v4, v6), nil
}

// newPeerFilter4 is the iptables VXLAN peer filter of flannel.<VNI>, or
// nil (after removing one an earlier run left) without --vxlan-peer-filter.
func (d *daemon) newPeerFilter4(port int, reg prometheus.Registerer) (*iptables.PeerFilter, error) {
	runner, err := iptables.NewRunner(false)
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	ipset := iptables.NewIPSetRunner()
	if !d.opts.vxlanPeerFilter {
		if err := iptables.RemovePeerFilter(runner, ipset); err != nil {
			d.log.Warn("could not remove a VXLAN peer filter left by an earlier run", "err", err)
		}
		return nil, nil
	}
	f, err := iptables.NewPeerFilter(iptables.PeerFilterOptions{
		Runner: runner, IPSet: ipset, Port: port, ExtraPorts: d.healthPorts(), Logger: d.log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("--vxlan-peer-filter: %w", err)
	}
	return f, nil
}

// nftExemption is the nftables mode's NAT exemption of outer VXLAN sent from
// bind (wanted), or the removal of one an earlier run left (not wanted).
func nftExemption(bind netip.AddrPort, wanted bool, resync time.Duration, log *slog.Logger) (exemptionKeeper, error) {
	k, err := nftrules.NewNetlinkKernel(0)
	if err != nil {
		return nil, err
	}
	if !wanted {
		if err := nftrules.RemoveNoTrack(k); err != nil {
			log.Warn("could not remove the VXLAN NAT exemption left by an earlier run", "err", err)
		}
		k.Close()
		return nil, nil
	}
	m, err := nftrules.NewManager(nftrules.Options{Kernel: k, VXLANNoTrack: bind, Resync: resync, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(); err != nil {
		return nil, err
	}
	return m, nil
}
