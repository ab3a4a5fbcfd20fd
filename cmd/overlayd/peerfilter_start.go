package main

import (
	"fmt"

	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/subnet"
)

// installPeerFilter puts the VXLAN peer filter in place with
// --vxlan-peer-filter, before the device exists: fail closed, so an
// error (ipset missing, no permission) ends the start rather than leave
// the VXLAN port open to anyone. Without the flag it removes a filter an
// earlier run left.
func (d *daemon) installPeerFilter(cfg *subnet.Config) error {
	runner, err := iptables.NewRunner(false)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	ipset := iptables.NewIPSetRunner()
	if !d.opts.vxlanPeerFilter {
		if err := iptables.RemovePeerFilter(runner, ipset); err != nil {
			d.log.Warn("could not remove a VXLAN peer filter left by an earlier run", "err", err)
		}
		return nil
	}
	port := vxlanPort(cfg)
	filter, err := iptables.NewPeerFilter(iptables.PeerFilterOptions{
		Runner: runner, IPSet: ipset, Port: port, Logger: d.log, Registerer: d.reg,
	})
	if err != nil {
		return fmt.Errorf("--vxlan-peer-filter: %w", err)
	}
	if err := filter.Install(); err != nil {
		return fmt.Errorf("--vxlan-peer-filter: cannot install the VXLAN peer filter, refusing to start with the VXLAN port %d open to anyone "+
			"(install ipset and make sure iptables works, or drop --vxlan-peer-filter): %w", port, err)
	}
	d.peerFilter = filter
	d.log.Info("vxlan peer filter on: UDP to the VXLAN port is accepted only from current peers", "port", port)
	return nil
}
