package main

import (
	"time"

	"github.com/overlayd/overlayd/backend"
)

// statusDoc is the /status document (and `overlayd status --json`).
type statusDoc struct {
	Ready    bool         `json:"ready"`
	EtcdAPI  string       `json:"etcdAPI,omitempty"`
	Underlay underlayInfo `json:"underlay"`
	Lease    *leaseInfo   `json:"lease,omitempty"`
	Device   *deviceInfo  `json:"device,omitempty"`
	Sync     *syncInfo    `json:"sync,omitempty"`
	IPTables *iptInfo     `json:"iptables,omitempty"`
}

type underlayInfo struct {
	Iface string `json:"iface"`
	// Bind is the address the VXLAN device uses as its source (local).
	Bind string `json:"bind"`
	// Advertise is the PublicIP in the lease: where peers send VXLAN.
	Advertise string `json:"advertise"`
	// AdvertiseOnHost is false behind 1:1 NAT (normal there).
	AdvertiseOnHost bool `json:"advertiseOnHost"`
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
	// TxChecksumOffload says whether the kernel's tx checksum offload (and
	// so TSO) is kept on the device, and why.
	TxChecksumOffload *offloadInfo `json:"txChecksumOffload,omitempty"`
}

type syncInfo struct {
	Synced           bool                 `json:"synced"`
	InSync           bool                 `json:"inSync"`
	LastPass         time.Time            `json:"lastPass,omitzero"`
	LastPassKind     string               `json:"lastPassKind,omitempty"`
	LastPassDuration string               `json:"lastPassDuration,omitempty"`
	LastFullPass     time.Time            `json:"lastFullPass,omitzero"`
	LastError        string               `json:"lastError,omitempty"`
	Counts           backend.StatusCounts `json:"counts"`
	Peers            []peerInfo           `json:"peers"`
}

type peerInfo struct {
	Subnet     string `json:"subnet"`
	PublicIP   string `json:"publicIP"`
	MAC        string `json:"mac"`
	Dst        string `json:"dst"`
	Direct     bool   `json:"direct,omitempty"`
	Programmed bool   `json:"programmed"`
	Error      string `json:"error,omitempty"`
}

type iptInfo struct {
	LastCheck time.Time `json:"lastCheck,omitzero"`
	InPlace   bool      `json:"inPlace"`
	Repairs   uint64    `json:"repairs"`
	LastError string    `json:"lastError,omitempty"`
}

func (d *daemon) status() any {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc := statusDoc{Ready: d.ready.isReady(), EtcdAPI: d.etcdAPI}
	if d.choice.Addr.IsValid() {
		doc.Underlay = underlayInfo{Iface: d.choice.Iface.Name, Bind: d.choice.Addr.String(),
			Advertise: d.public.String(), AdvertiseOnHost: d.advertiseOnHost}
	}
	if d.device.Name != "" {
		doc.Device = &deviceInfo{Name: d.device.Name, MAC: d.device.MAC.String(), MTU: d.device.MTU, Local: d.device.LocalIP.String(), VNI: d.device.VNI,
			TxChecksumOffload: d.offload.status()}
	}
	if d.ready.isReady() && d.src != nil {
		l := d.src.Lease()
		doc.Lease = &leaseInfo{Subnet: l.Subnet.String(), Expiration: l.Expiration}
	}
	if d.rec != nil {
		doc.Sync = syncStatus(d.rec.Status())
	}
	if d.ipt != nil {
		s := d.ipt.Status()
		doc.IPTables = &iptInfo{LastCheck: s.LastCheck, InPlace: s.InPlace, Repairs: s.Repairs}
		if s.LastError != nil {
			doc.IPTables.LastError = s.LastError.Error()
		}
	}
	return doc
}

func syncStatus(s backend.Status) *syncInfo {
	out := &syncInfo{
		Synced: s.Synced, InSync: s.InSync, LastPass: s.LastPass, LastPassKind: s.LastPassKind,
		LastFullPass: s.LastFullPass, LastError: s.LastError, Counts: s.Counts,
		Peers: make([]peerInfo, 0, len(s.Peers)),
	}
	if s.LastPassDuration > 0 {
		out.LastPassDuration = s.LastPassDuration.String()
	}
	for _, p := range s.Peers {
		out.Peers = append(out.Peers, peerInfo{
			Subnet: p.Subnet.String(), PublicIP: p.PublicIP.String(), MAC: p.MAC.String(),
			Dst: p.Dst.String(), Direct: p.Direct, Programmed: p.Programmed, Error: p.Error,
		})
	}
	return out
}
