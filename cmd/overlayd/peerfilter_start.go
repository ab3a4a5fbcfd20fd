package main

import (
	"fmt"

	"github.com/overlayd/overlayd/subnet"
)

// installPeerFilter puts the VXLAN peer filter of the configured mode
// (rules.go) in place with --vxlan-peer-filter, before the device exists:
// fail closed, so an error (ipset missing, no permission, no nf_tables)
// ends the start rather than leave the VXLAN port open to anyone. Without
// the flag, newPeerFilter removes a filter an earlier run left.
func (d *daemon) installPeerFilter(cfg *subnet.Config) error {
	filter, err := d.newPeerFilter(cfg)
	if err != nil || filter == nil {
		return err
	}
	port := vxlanPort(cfg)
	if err := filter.Install(); err != nil {
		return fmt.Errorf("--vxlan-peer-filter: cannot install the VXLAN peer filter, refusing to start with the VXLAN port %d open to anyone "+
			"(install ipset and make sure iptables works, or drop --vxlan-peer-filter): %w", port, err)
	}
	d.peerFilter = filter
	d.log.Info("vxlan peer filter on: UDP to the VXLAN port is accepted only from current peers", "port", port)
	return nil
}
