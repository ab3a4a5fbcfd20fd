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
		s.applyLease(&leases[i], out)
	}
	for sub := range s.peers {
		if _, ok := present[sub]; !ok {
			s.remove(sub, out)
		}
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
// subnet's good state; one that cannot be used keeps the last good state
// (the reconciler is told to keep the subnet as it is); one that is not a
// peer (another backend, our own subnet) removes the subnet's peer.
func (s *Set) applyLease(l *subnet.Lease, out *outputs) {
	sub := l.Subnet
	d, err := s.rules.decode(*l)
	switch {
	case errors.Is(err, errIgnored):
		s.log.Debug("lease ignored", "lease", subnet.KeyName(sub), "reason", err)
		s.remove(sub, out)
		return
	case err != nil:
		e := s.entry(sub)
		e.lease = *l
		s.refuse(e, err)
		out.keep(sub, e.keep)
		return
	}
	e := s.entry(sub)
	e.lease = *l
	delete(s.warned, sub)
	e.keep = ""
	s.setGood(e, d, out)
}

func (s *Set) entry(sub netip.Prefix) *entry {
	e, ok := s.peers[sub]
	if !ok {
		e = &entry{}
		s.peers[sub] = e
	}
	return e
}

// refuse records why a lease cannot be used, warning once per subnet and
// reason (an unreadable value was warned about by the lease manager).
func (s *Set) refuse(e *entry, err error) {
	sub := e.lease.Subnet
	e.keep = err.Error()
	if errors.Is(err, errUnreadable) {
		s.log.Debug("keeping the entries of a subnet whose lease is unreadable", "lease", subnet.KeyName(sub))
		return
	}
	if s.warned[sub] == e.keep {
		return
	}
	s.warned[sub] = e.keep
	s.log.Warn("skipping malformed peer lease", "lease", subnet.KeyName(sub), "reason", e.keep)
}

// setGood makes d the subnet's good state and tells every consumer.
func (s *Set) setGood(e *entry, d decoded, out *outputs) {
	sub := e.lease.Subnet
	old, had, oldDst := e.good, e.hasGood, e.dst
	if v, ok := s.verdicts[sub]; ok && (v.Private != d.privateIP || v.MAC != d.mac) {
		delete(s.verdicts, sub) // verified for another identity
	}
	s.addrs.release(s, e)
	e.good, e.hasGood = d, true
	e.dst = s.dstOf(sub, d)
	s.addrs.hold(s, e)
	out.peer(s.peerOf(sub, e))
	switch {
	case !had:
		out.log.note("peer added", s.peerOf(sub, e))
	case old.mac != d.mac || oldDst != e.dst:
		out.log.note("peer changed", s.peerOf(sub, e))
	}
	switch {
	case d.privateIP.IsValid():
		out.candidate(Candidate{Subnet: sub, Private: d.privateIP, MAC: d.mac, PublicIP: d.publicIP})
	case had && old.privateIP.IsValid():
		out.dropCandidate(sub)
	}
}

// remove forgets a subnet: its lease is gone or is no peer.
func (s *Set) remove(sub netip.Prefix, out *outputs) {
	e, ok := s.peers[sub]
	if !ok {
		return
	}
	delete(s.warned, sub)
	delete(s.verdicts, sub)
	s.addrs.release(s, e)
	delete(s.peers, sub)
	out.removed(sub)
	if e.hasGood {
		out.log.note("peer removed", goodPeer(sub, e))
		if e.good.privateIP.IsValid() {
			out.dropCandidate(sub)
		}
	}
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
	case v.Private == e.good.privateIP && v.MAC == e.good.mac:
		s.verdicts[v.Subnet] = v
	default:
		return // about an identity the lease no longer names
	}
	dst := s.dstOf(v.Subnet, e.good)
	if dst == e.dst {
		return
	}
	s.addrs.release(s, e)
	e.dst = dst
	s.addrs.hold(s, e)
	if e.keep == "" {
		out.peer(s.peerOf(v.Subnet, e))
		out.log.note("peer changed", s.peerOf(v.Subnet, e))
	}
}

// dstOf is the underlay destination: the private address while it is
// verified same-site, else the PublicIP.
func (s *Set) dstOf(sub netip.Prefix, d decoded) netip.Addr {
	if v, ok := s.verdicts[sub]; ok && v.Private == d.privateIP && v.MAC == d.mac {
		return d.privateIP
	}
	return d.publicIP
}

// peerOf is what the reconciler is told about an entry.
func (s *Set) peerOf(sub netip.Prefix, e *entry) Peer {
	if e.keep != "" || !e.hasGood {
		return Peer{Subnet: sub, Keep: e.keep}
	}
	return goodPeer(sub, e)
}

// goodPeer is the entry's last good state as a peer.
func goodPeer(sub netip.Prefix, e *entry) Peer {
	return Peer{Subnet: sub, PublicIP: e.good.publicIP, MAC: e.good.mac, Dst: e.dst}
}
