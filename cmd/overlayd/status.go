package main

import (
	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/statusdoc"
)

func (d *daemon) status() any {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc := statusdoc.Doc{Ready: d.ready.isReady(), EtcdAPI: d.etcdAPI}
	if d.choice.Addr.IsValid() {
		doc.Underlay = statusdoc.Underlay{Iface: d.choice.Iface.Name, Bind: d.choice.Addr.String(),
			Advertise: d.public.String(), AdvertiseOnHost: d.advertiseOnHost}
	}
	d.status6(&doc) // ipv6plane.go
	if d.device.Name != "" {
		doc.Device = &statusdoc.Device{Name: d.device.Name, MAC: d.device.MAC.String(), MTU: d.device.MTU, Local: d.device.LocalIP.String(), VNI: d.device.VNI,
			TxChecksumOffload: d.offload.status()}
	}
	if d.ready.fileWritten() && d.src != nil {
		l := d.src.Lease()
		doc.Lease = &statusdoc.Lease{Subnet: prefixString(l.Subnet), IPv6Subnet: prefixString(l.IPv6Subnet),
			Expiration: l.Expiration, Expired: d.ready.expired.Load()}
	}
	if d.rec != nil {
		doc.Sync = syncStatus(d.rec.Status())
	}
	if d.peers != nil {
		doc.RefusedLeases = refusedStatus(d.peers.Refused())
	}
	if d.ipt != nil {
		s := d.ipt.Status()
		doc.IPTables = &statusdoc.IPTables{LastCheck: s.LastCheck, InPlace: s.InPlace, Repairs: s.Repairs}
		if s.LastError != nil {
			doc.IPTables.LastError = s.LastError.Error()
		}
	}
	doc.Health = d.health.status() // health.go
	return doc
}

func syncStatus(s backend.Status) *statusdoc.Sync {
	out := &statusdoc.Sync{
		Synced: s.Synced, InSync: s.InSync, LastPass: s.LastPass, LastPassKind: s.LastPassKind,
		LastFullPass: s.LastFullPass, LastError: s.LastError, Counts: s.Counts,
		RouteMode: s.RouteMode, RouteModeReason: s.RouteModeReason,
		Peers: make([]statusdoc.Peer, 0, len(s.Peers)),
	}
	if s.LastPassDuration > 0 {
		out.LastPassDuration = s.LastPassDuration.String()
	}
	for _, p := range s.Peers {
		out.Peers = append(out.Peers, statusdoc.Peer{
			Subnet: p.Subnet.String(), PublicIP: p.PublicIP.String(), MAC: p.MAC.String(),
			Dst: p.Dst.String(), Direct: p.Direct, Programmed: p.Programmed, Error: p.Error,
		})
	}
	return out
}

func refusedStatus(list []peerset.Refused) []statusdoc.RefusedLease {
	out := make([]statusdoc.RefusedLease, 0, len(list))
	for _, r := range list {
		out = append(out, statusdoc.RefusedLease{Subnet: r.Subnet.String(), Reason: r.Reason, Field: r.Field,
			Value: r.Value, Message: r.Message, Since: r.Since, Kept: r.Kept})
	}
	return out
}
