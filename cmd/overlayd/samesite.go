package main

import (
	"context"
	"net/netip"

	"github.com/overlayd/overlayd/samesite"
	"github.com/overlayd/overlayd/subnet"
)

// sameSite is the daemon's side of package samesite. A nil *sameSite
// (detection off or unavailable) changes nothing: every peer's VXLAN
// goes to its PublicIP, as with flanneld.
type sameSite struct{ det *samesite.Detector }

// setupSameSite starts same-site detection behind 1:1 NAT (only then does
// our lease carry OverlaydPrivateIP for peers to verify us by). Failing to
// open the port is not fatal: the node then uses public addresses only.
func (d *daemon) setupSameSite(lease subnet.Lease) *sameSite {
	port := d.opts.sameSitePort
	switch {
	case port == 0:
		d.log.Info("same-site detection off (--same-site-port=0): VXLAN to every peer goes to its public address")
		return nil
	case d.public == d.choice.Addr:
		return nil
	case d.sameSiteKey == nil:
		return nil // logged by sameSiteLeaseKey
	}
	bind := netip.AddrPortFrom(d.choice.Addr, port)
	conn, err := samesite.Listen(bind)
	if err != nil {
		d.log.Warn("same-site detection unavailable; VXLAN to every peer goes to its public address", "err", err)
		return nil
	}
	det, err := samesite.New(samesite.Options{
		Conn: conn, Port: port, Local: d.choice.Prefix,
		Self:   samesite.Identity{Subnet: lease.Subnet, MAC: d.device.MAC, Key: d.sameSiteKey},
		Logger: d.log, Registerer: d.reg,
	})
	if err != nil {
		conn.Close()
		d.log.Warn("same-site detection unavailable; VXLAN to every peer goes to its public address", "err", err)
		return nil
	}
	return &sameSite{det: det}
}

// peerDst is the reconciler's PeerDst; nil means the lease's PublicIP.
func (s *sameSite) peerDst() func(subnet.Lease) netip.Addr {
	if s == nil {
		return nil
	}
	return s.det.PeerDst
}

// wrap puts the detector between the lease watch and next.
func (s *sameSite) wrap(next subnet.PeerSink) subnet.PeerSink {
	if s == nil {
		return next
	}
	return s.det.Sink(next)
}

// run answers and sends probes until ctx ends.
func (s *sameSite) run(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.det.Run(ctx)
}
