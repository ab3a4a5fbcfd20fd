package main

import (
	"fmt"
	"log/slog"
	"os/exec"

	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/subnet"
)

// IPv6 rules (EnableIPv6): the iptables mode's rules a second time, in
// ip6tables, for the IPv6 network and our IPv6 subnet, as flanneld does
// (docs/compatibility.md, "IPv6 and dual-stack"); the VXLAN peer filter
// a second time for the IPv6 device. The nftables mode's are in
// rulesnft.go.

// hasIPv4 and hasIPv6 say which families the config serves.
func hasIPv4(cfg *subnet.Config) bool { return cfg.Network.IsValid() }
func hasIPv6(cfg *subnet.Config) bool { return cfg.EnableIPv6 && cfg.IPv6Network.IsValid() }

// checkIPv6RulesMode fails at start when IPv6 is on and the iptables mode
// cannot program it: it needs a working ip6tables. (The nftables mode
// programs both families through netlink; checkRulesMode checks it.)
func checkIPv6RulesMode(cfg *subnet.Config) error {
	if !cfg.EnableIPv6 || cfg.EnableNFTables {
		return nil
	}
	const hint = `; EnableIPv6 needs ip6tables (and ipset with --vxlan-peer-filter)`
	if _, err := exec.LookPath("ip6tables"); err != nil {
		return fmt.Errorf("iptables mode: the ip6tables binary is not in PATH%s: %w", hint, err)
	}
	runner, err := iptables.NewRunner(true)
	if err == nil {
		_, err = runner.List("nat", "POSTROUTING")
	}
	if err != nil {
		return fmt.Errorf("iptables mode: ip6tables cannot use the nat table (kernel module ip6table_nat, or nf_tables for ip6tables-nft, missing)%s: %w", hint, err)
	}
	return nil
}

// newRules6 builds the ip6tables masquerade and forward rules when the
// config enables IPv6 (nil when it does not). Without an IPv6 subnet in
// the lease there is nothing to masquerade for: only FLANNEL-FWD is kept.
// When IPv6 was on in the previous run (the old subnet file has
// FLANNEL_IPV6_*) and is off now, what that run left in ip6tables goes.
func (d *daemon) newRules6(cfg *subnet.Config, lease subnet.Lease, prev subnet.SubnetEnv) (rulesKeeper, error) {
	o := d.opts
	if !hasIPv6(cfg) {
		if prev.IPv6Network.IsValid() {
			removeIPv6Rules(d.log, "IPv6 is off now: removing the ip6tables rules of the previous run")
		}
		return nil, nil
	}
	runner, err := iptables.NewRunner(true)
	if err != nil {
		return nil, fmt.Errorf("ip6tables: %w", err)
	}
	masq := o.ipMasq
	if masq && !lease.IPv6Subnet.IsValid() {
		d.log.Warn("EnableIPv6: the lease has no IPv6 subnet, no IPv6 masquerade rules", "ipv6_network", cfg.IPv6Network)
		masq = false
	}
	m, err := iptables.NewManager(iptables.Options{
		Runner: runner, Network: cfg.IPv6Network, PodSubnet: lease.IPv6Subnet,
		Masquerade: masq, ForwardRules: o.forwardRules,
		RandomFullyDisabled: o.randomFullyOff,
		PrevNetwork:         prev.IPv6Network, PrevSubnet: prev.IPv6Subnet,
		Resync: o.iptablesResync, Logger: d.log.With("family", "ipv6"), Registerer: d.familyRegisterer(cfg, "ipv6"),
	})
	if err != nil {
		return nil, fmt.Errorf("ip6tables: %w", err)
	}
	return m, nil
}

// removeIPv6Rules removes everything the iptables mode left in ip6tables
// (chains, jumps, the IPv6 peer set), when ip6tables is there to ask.
func removeIPv6Rules(log *slog.Logger, why string) {
	if _, err := exec.LookPath("ip6tables"); err != nil {
		log.Debug("no ip6tables binary, no ip6tables rules to remove")
		return
	}
	log.Info(why)
	runner, err := iptables.NewRunner(true)
	if err == nil {
		err = iptables.RemoveAll(runner, nil)
	}
	if err != nil {
		log.Warn("could not remove every ip6tables rule of an earlier run", "err", err)
	}
}

// newPeerFilter6 is the ip6tables VXLAN peer filter of the IPv6 device
// (nil when IPv6 is off or --vxlan-peer-filter is not set; then a filter
// an earlier run left is removed).
func (d *daemon) newPeerFilter6(cfg *subnet.Config) (vxlanFilter, error) {
	if !hasIPv6(cfg) {
		if d.prev.IPv6Network.IsValid() {
			d.removePeerFilter6()
		}
		return nil, nil
	}
	if !d.opts.vxlanPeerFilter {
		d.removePeerFilter6()
		return nil, nil
	}
	runner, err := iptables.NewRunner(true)
	if err != nil {
		return nil, fmt.Errorf("ip6tables: %w", err)
	}
	f, err := iptables.NewPeerFilter(iptables.PeerFilterOptions{
		Runner: runner, Port: vxlanPort(cfg), ExtraPorts: d.healthPorts(),
		Logger: d.log.With("family", "ipv6"), Registerer: d.familyRegisterer(cfg, "ipv6"),
	})
	if err != nil {
		return nil, fmt.Errorf("--vxlan-peer-filter (IPv6): %w", err)
	}
	return f, nil
}

func (d *daemon) removePeerFilter6() {
	if _, err := exec.LookPath("ip6tables"); err != nil {
		return
	}
	runner, err := iptables.NewRunner(true)
	if err == nil {
		err = iptables.RemovePeerFilter(runner, nil)
	}
	if err != nil {
		d.log.Warn("could not remove an IPv6 VXLAN peer filter left by an earlier run", "err", err)
	}
}
