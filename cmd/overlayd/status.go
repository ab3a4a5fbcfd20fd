package main

import (
	"time"
)

// statusDoc is the /status document (and `overlayd status --json`).
type statusDoc struct {
	Ready    bool         `json:"ready"`
	Underlay underlayInfo `json:"underlay"`
	Lease    *leaseInfo   `json:"lease,omitempty"`
	Device   *deviceInfo  `json:"device,omitempty"`
	Sync     any          `json:"sync,omitempty"`
	IPTables any          `json:"iptables,omitempty"`
}

type underlayInfo struct {
	Iface string `json:"iface"`
	// Bind is the address the VXLAN device uses as its source (local).
	Bind string `json:"bind"`
	// Advertise is the PublicIP in the lease: where peers send VXLAN.
	Advertise string `json:"advertise"`
}

type leaseInfo struct {
	Subnet     string    `json:"subnet"`
	Expiration time.Time `json:"expiration,omitzero"`
}

type deviceInfo struct {
	Name  string `json:"name"`
	MAC   string `json:"mac"`
	MTU   int    `json:"mtu"`
	Local string `json:"local"`
	VNI   int    `json:"vni"`
}

func (d *daemon) status() any {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc := statusDoc{Ready: d.ready.isReady()}
	if d.choice.Addr.IsValid() {
		doc.Underlay = underlayInfo{Iface: d.choice.Iface.Name, Bind: d.choice.Addr.String(), Advertise: d.public.String()}
	}
	if d.device.Name != "" {
		doc.Device = &deviceInfo{Name: d.device.Name, MAC: d.device.MAC.String(), MTU: d.device.MTU, Local: d.device.LocalIP.String(), VNI: d.device.VNI}
	}
	if d.ready.isReady() && d.mgr != nil {
		l := d.mgr.Lease()
		doc.Lease = &leaseInfo{Subnet: l.Subnet.String(), Expiration: l.Expiration}
	}
	if d.rec != nil {
		doc.Sync = d.rec.Status()
	}
	if d.ipt != nil {
		doc.IPTables = d.ipt.Status()
	}
	return doc
}
