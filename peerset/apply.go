package peerset

import (
	"errors"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
)

func (s *Set) applyReplace(leases []subnet.Lease, out *outputs) {
	out.replace = true
	present := make(map[netip.Prefix]struct{}, len(leases))
	for i := range leases {
		present[leases[i].Subnet] = struct{}{}
	}
	// Gone first, so that a lease refused for overlapping one that is
	// gone is admitted by this snapshot.
	for sub := range s.peers {
		if _, ok := present[sub]; !ok {
			s.remove(sub, out)
		}
	}
	for i := range leases {
		s.applyLease(&leases[i], out)
	}
}

func (s *Set) applyEvent(ev *subnet.Event, out *outputs) {
	if ev.Type == subnet.EventRemoved {
		s.remove(ev.Lease.Subnet, out)
		return
	}
	s.applyLease(&ev.Lease, out)
}

// applyLease takes a new or changed lease. A usable one becomes the
// subnet's good state; one whose fields cannot be used keeps the last good
// state (the reconciler is told to keep the subnet as it is); one whose
// subnet is refused (outside the network, wrong length, overlapping our
// subnet or an older peer's) withdraws the subnet's peer; one that is not a
// peer (another backend, our own subnet) removes it.
func (s *Set) applyLease(l *subnet.Lease, out *outputs) {
	sub := l.Subnet
	d, err := s.rules.decode(*l)
	if errors.Is(err, errIgnored) {
		s.log.Debug("lease ignored", "lease", subnet.KeyName(sub), "reason", err)
		s.remove(sub, out)
		return
	}
	e := s.entry(sub)
	e.created = l.Created
	if s.rules.subnetLen == 0 {
		cp := *l
		e.raw = &cp
	}
	var ref *refusal
	errors.As(err, &ref)
	if ref == nil || ref.subnetOK {
		if older := s.olderOverlap(e); older != nil {
			ref = refuse(ReasonOverlapsPeer, "Subnet", sub.String(), true,
				"subnet %s overlaps the older peer lease %s", sub, older.sub)
		}
	}
	if ref != nil {
		s.refuseEntry(e, ref, out)
		return
	}
	s.admit(e, out)
	s.setGood(e, d, out)
}

func (s *Set) entry(sub netip.Prefix) *entry {
	e, ok := s.peers[sub]
	if !ok {
		e = &entry{sub: sub}
		s.peers[sub] = e
	}
	return e
}

// admit puts a usable entry in the overlap index, withdrawing newer peers
// that overlap it (the older lease wins on every node), and clears its
// refusal.
func (s *Set) admit(e *entry, out *outputs) {
	s.clearRefusal(e)
	s.placeOlder(e, out)
}

// placeOlder puts e, older than every peer it overlaps, in the overlap
// index and withdraws those peers.
func (s *Set) placeOlder(e *entry, out *outputs) {
	s.place(e)
	for _, q := range s.overlapping(e) {
		s.refuseEntry(q, refuse(ReasonOverlapsPeer, "Subnet", q.sub.String(), true,
			"subnet %s overlaps the older peer lease %s", q.sub, e.sub), out)
	}
}

// refuseEntry records why a lease cannot be used. A refused subnet is
// withdrawn: its peer goes everywhere. Otherwise the subnet keeps its last
// good state and the reconciler keeps it as it is.
func (s *Set) refuseEntry(e *entry, ref *refusal, out *outputs) {
	sub := e.sub
	s.setRefusal(e, ref)
	if !ref.withdraw {
		out.keep(sub, e.keep())
		if ref.subnetOK {
			s.placeOlder(e, out)
		} else {
			s.unplace(e, out)
		}
		return
	}
	if e.hasGood {
		s.dropGood(e, out)
	}
	out.removed(sub)
	s.unplace(e, out)
}

// setGood makes d the subnet's good state and tells every consumer.
func (s *Set) setGood(e *entry, d decoded, out *outputs) {
	sub := e.sub
	old, had, oldDst := e.good, e.hasGood, e.dst()
	if v, ok := s.verdicts[sub]; ok && (v.Private != d.privateIP() || v.MAC != d.mac || v.Key != d.key()) {
		delete(s.verdicts, sub) // verified for another identity or key
	}
	s.addrs.release(s, e)
	e.good, e.hasGood = d, true
	e.viaPrivate = s.viaPrivate(sub, &d)
	s.addrs.hold(s, e)
	out.peer(s.peerOf(sub, e))
	switch {
	case !had:
		out.log.note("peer added", goodPeer(sub, e))
	case old.mac != d.mac || oldDst != e.dst() || old.publicIP != d.publicIP:
		out.log.note("peer changed", goodPeer(sub, e))
	}
	switch {
	case d.privateIP().IsValid():
		out.candidate(candidateOf(sub, &d))
	case had && old.privateIP().IsValid():
		out.dropCandidate(sub)
	}
}

// dropGood forgets the entry's good state: the peer is gone for every
// consumer (the caller tells the reconciler).
func (s *Set) dropGood(e *entry, out *outputs) {
	sub := e.sub
	out.log.note("peer removed", goodPeer(sub, e))
	s.addrs.release(s, e)
	if e.good.privateIP().IsValid() {
		out.dropCandidate(sub)
	}
	delete(s.verdicts, sub)
	e.hasGood, e.good, e.viaPrivate = false, decoded{}, false
}

// remove forgets a subnet: its lease is gone or is no peer.
func (s *Set) remove(sub netip.Prefix, out *outputs) {
	e, ok := s.peers[sub]
	if !ok {
		return
	}
	if e.hasGood {
		s.dropGood(e, out)
	}
	s.clearRefusal(e)
	delete(s.peers, sub)
	out.removed(sub)
	s.unplace(e, out)
}

// applyVerdict records a same-site verdict that matches the subnet's
// current good state and re-derives its destination.
func (s *Set) applyVerdict(v Verdict, out *outputs) {
	e, ok := s.peers[v.Subnet]
	if !ok || !e.hasGood {
		return
	}
	switch {
	case !v.Private.IsValid():
		delete(s.verdicts, v.Subnet)
	case v.Private == e.good.privateIP() && v.MAC == e.good.mac && v.Key == e.good.key():
		s.verdicts[v.Subnet] = v
	default:
		return // about an identity the lease no longer names
	}
	via := s.viaPrivate(v.Subnet, &e.good)
	if via == e.viaPrivate {
		return
	}
	s.addrs.release(s, e)
	e.viaPrivate = via
	s.addrs.hold(s, e)
	if e.keep() == "" {
		out.peer(s.peerOf(v.Subnet, e))
		out.log.note("peer changed", s.peerOf(v.Subnet, e))
	}
}

// viaPrivate reports whether the underlay destination is the private
// address: while it is verified same-site (else it is the PublicIP).
func (s *Set) viaPrivate(sub netip.Prefix, d *decoded) bool {
	v, ok := s.verdicts[sub]
	return ok && d.privateIP().IsValid() && v.Private == d.privateIP() && v.MAC == d.mac
}

// candidateOf is the same-site candidate of a good state.
func candidateOf(sub netip.Prefix, d *decoded) Candidate {
	return Candidate{Subnet: sub, Private: d.privateIP(), MAC: d.mac, PublicIP: d.publicIP, Key: d.key()}
}

// peerOf is what the reconciler is told about an entry.
func (s *Set) peerOf(sub netip.Prefix, e *entry) Peer {
	if k := e.keep(); k != "" || !e.hasGood {
		return Peer{Subnet: sub, Keep: k}
	}
	return goodPeer(sub, e)
}

// goodPeer is the entry's last good state as a peer.
func goodPeer(sub netip.Prefix, e *entry) Peer {
	return Peer{Subnet: sub, PublicIP: e.good.publicIP, MAC: e.good.mac, Dst: e.dst()}
}
