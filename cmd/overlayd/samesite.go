package main

import (
	"context"
	"net/netip"

	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/samesite"
	"github.com/overlayd/overlayd/subnet"
)

// sameSite is the daemon's side of package samesite: the peer set tells
// the detector the candidates, the detector queues its verdicts back into
// the peer set. A nil *sameSite (detection off or unavailable) changes
// nothing: every peer's VXLAN goes to its PublicIP, as with flanneld.
type sameSite struct {
	det      *samesite.Detector
	verdicts *verdictFwd
}

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
	verdicts := &verdictFwd{}
	det, err := samesite.New(samesite.Options{
		Conn: conn, Port: port, Local: d.choice.Prefix,
		Self:     samesite.Identity{Subnet: lease.Subnet, MAC: d.device.MAC, Key: d.sameSiteKey},
		Verdicts: verdicts, Logger: d.log, Registerer: d.reg,
	})
	if err != nil {
		conn.Close()
		d.log.Warn("same-site detection unavailable; VXLAN to every peer goes to its public address", "err", err)
		return nil
	}
	return &sameSite{det: det, verdicts: verdicts}
}

// candidates is the peer set's CandidateSink; nil when detection is off.
func (s *sameSite) candidates() peerset.CandidateSink {
	if s == nil {
		return nil
	}
	return candidateFwd{s.det}
}

// attach sends the detector's verdicts to the peer set; call it before
// run.
func (s *sameSite) attach(set *peerset.Set) {
	if s != nil {
		s.verdicts.set = set
	}
}

// verdictFwd queues the detector's verdicts into the peer set.
type verdictFwd struct{ set *peerset.Set }

func (v *verdictFwd) SetVerdict(x samesite.Verdict) {
	if v.set != nil {
		v.set.SetVerdict(peerset.Verdict(x))
	}
}

// candidateFwd hands the peer set's candidates to the detector.
type candidateFwd struct{ det *samesite.Detector }

func (c candidateFwd) ReplaceCandidates(cs []peerset.Candidate) {
	c.det.ReplaceCandidates(toSameSite(cs))
}

func (c candidateFwd) UpdateCandidates(set []peerset.Candidate, removed []netip.Prefix) {
	c.det.UpdateCandidates(toSameSite(set), removed)
}

func toSameSite(cs []peerset.Candidate) []samesite.Candidate {
	out := make([]samesite.Candidate, len(cs))
	for i, c := range cs {
		out[i] = samesite.Candidate(c)
	}
	return out
}

// run answers and sends probes until ctx ends.
func (s *sameSite) run(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.det.Run(ctx)
}
