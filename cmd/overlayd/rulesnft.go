package main

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/nftrules"
	"github.com/overlayd/overlayd/subnet"
)

// The nftables mode (EnableNFTables) per family: tables ip flannel-ipv4
// and ip overlayd-ipv4 for IPv4, ip6 flannel-ipv6 and ip6 overlayd-ipv6
// for IPv6 (EnableIPv6), each family's rules and peer filter a manager of
// its own, joined as in the iptables mode (familyjoin.go).

// newNFTRules builds the nftables mode's masquerade and forward rules of
// each family the config serves, after removing the iptables mode's.
func (d *daemon) newNFTRules(cfg *subnet.Config, lease subnet.Lease, prev subnet.SubnetEnv) (rulesKeeper, error) {
	o := d.opts
	removeIPTablesMode(d.log)
	if prev.IPv6Network.IsValid() {
		removeIPv6Rules(d.log, "nftables mode: removing the ip6tables rules of the previous run") // rules6.go
	}
	var v4, v6 rulesKeeper
	if hasIPv4(cfg) {
		m, err := d.nftManager(cfg.Network, lease.Subnet, o.ipMasq, d.familyRegisterer(cfg, "ipv4"), d.log)
		if err != nil {
			return nil, err
		}
		v4 = m
		d.log.Info("nftables mode: masquerade and forward rules in table ip " + nftrules.FlannelTable4)
	}
	if hasIPv6(cfg) {
		masq := o.ipMasq
		if masq && !lease.IPv6Subnet.IsValid() {
			d.log.Warn("EnableIPv6: the lease has no IPv6 subnet, no IPv6 masquerade rules", "ipv6_network", cfg.IPv6Network)
			masq = false
		}
		log := d.log.With("family", "ipv6")
		m, err := d.nftManager(cfg.IPv6Network, lease.IPv6Subnet, masq, d.familyRegisterer(cfg, "ipv6"), log)
		if err != nil {
			return nil, err
		}
		v6 = m
		log.Info("nftables mode: IPv6 masquerade and forward rules in table ip6 " + nftrules.FlannelTable6)
	}
	return joinRules(v4, v6), nil
}

// nftManager is one family's nftables rule manager on a netlink socket of
// its own (each runs its own resync loop).
func (d *daemon) nftManager(network, pod netip.Prefix, masq bool, reg prometheus.Registerer, log *slog.Logger) (*nftrules.Manager, error) {
	k, err := nftrules.NewNetlinkKernel(0)
	if err != nil {
		return nil, fmt.Errorf("EnableNFTables: %w", err)
	}
	o := d.opts
	m, err := nftrules.NewManager(nftrules.Options{
		Kernel: k, Network: network, PodSubnet: pod,
		Masquerade: masq, ForwardRules: o.forwardRules, FullyRandomDisabled: o.randomFullyOff,
		Resync: o.iptablesResync, Logger: log, Clock: subnet.RealClock(), Registerer: reg,
	})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("EnableNFTables (network %s): %w", network, err)
	}
	return m, nil
}

// newNFTPeerFilter is the nftables mode's VXLAN peer filter of each
// family the config serves, or, without --vxlan-peer-filter, the removal
// of the filters an earlier run left (both families) and nil.
func (d *daemon) newNFTPeerFilter(cfg *subnet.Config) (vxlanFilter, error) {
	if !d.opts.vxlanPeerFilter {
		k, err := nftrules.NewNetlinkKernel(0)
		if err != nil {
			return nil, fmt.Errorf("--vxlan-peer-filter: %w", err)
		}
		defer k.Close()
		if err := nftrules.RemovePeerFilter(k); err != nil {
			d.log.Warn("could not remove a VXLAN peer filter left by an earlier run", "err", err)
		}
		return nil, nil
	}
	var v4, v6 vxlanFilter
	if hasIPv4(cfg) {
		f, err := d.nftPeerFilter(cfg, false, d.log)
		if err != nil {
			return nil, err
		}
		v4 = f
	}
	if hasIPv6(cfg) {
		f, err := d.nftPeerFilter(cfg, true, d.log.With("family", "ipv6"))
		if err != nil {
			return nil, err
		}
		v6 = f
	}
	return joinFilters(v4, v6), nil
}

func (d *daemon) nftPeerFilter(cfg *subnet.Config, ipv6 bool, log *slog.Logger) (*nftrules.PeerFilter, error) {
	k, err := nftrules.NewNetlinkKernel(0)
	if err != nil {
		return nil, fmt.Errorf("--vxlan-peer-filter: %w", err)
	}
	family := "ipv4"
	if ipv6 {
		family = "ipv6"
	}
	f, err := nftrules.NewPeerFilter(nftrules.PeerFilterOptions{
		Kernel: k, Port: vxlanPort(cfg), ExtraPorts: d.healthPorts(), IPv6: ipv6,
		Logger: log, Clock: subnet.RealClock(), Registerer: d.familyRegisterer(cfg, family),
	})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("--vxlan-peer-filter (%s): %w", family, err)
	}
	return f, nil
}
