package peerset

import (
	"cmp"
	"net/netip"
)

// The overlap index holds every subnet that is not withdrawn, by prefix
// length. With SubnetLen checked all peers have one length, and a lookup
// is one map access per length; only prefixes longer than the one looked
// up are scanned.
type overlapIndex map[int]map[netip.Prefix]*entry

// place puts e in the index (it is a current peer, good or kept).
func (s *Set) place(e *entry) {
	if e.indexed {
		return
	}
	e.indexed = true
	sub := e.lease.Subnet
	m := s.index[sub.Bits()]
	if m == nil {
		m = map[netip.Prefix]*entry{}
		s.index[sub.Bits()] = m
	}
	m[sub] = e
}

// unplace takes e out of the index and admits the refused leases that
// only its subnet kept out.
func (s *Set) unplace(e *entry, out *outputs) {
	if !e.indexed {
		return
	}
	e.indexed = false
	sub := e.lease.Subnet
	if m := s.index[sub.Bits()]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(s.index, sub.Bits())
		}
	}
	s.readmit(sub, out)
}

// overlapping returns the current peers other than e whose subnet overlaps
// e's.
func (s *Set) overlapping(e *entry) []*entry {
	sub := e.lease.Subnet
	var out []*entry
	for bits, m := range s.index {
		if bits <= sub.Bits() {
			if q, ok := m[netip.PrefixFrom(sub.Addr(), bits).Masked()]; ok && q != e {
				out = append(out, q)
			}
			continue
		}
		for p, q := range m {
			if sub.Contains(p.Addr()) {
				out = append(out, q)
			}
		}
	}
	return out
}

// olderOverlap returns the oldest current peer that overlaps e and is
// older than e, or nil.
func (s *Set) olderOverlap(e *entry) *entry {
	var oldest *entry
	for _, q := range s.overlapping(e) {
		if older(q, e) && (oldest == nil || older(q, oldest)) {
			oldest = q
		}
	}
	return oldest
}

// older orders leases by creation (etcd revision or Node creation time),
// then by subnet, so that every node picks the same winner.
func older(a, b *entry) bool {
	if c := cmp.Compare(a.lease.Created, b.lease.Created); c != 0 {
		return c < 0
	}
	if c := a.lease.Subnet.Addr().Compare(b.lease.Subnet.Addr()); c != 0 {
		return c < 0
	}
	return a.lease.Subnet.Bits() < b.lease.Subnet.Bits()
}

// readmit re-applies the leases refused for overlapping an older peer
// whose subnet overlaps gone, now that gone is no longer in the way.
func (s *Set) readmit(gone netip.Prefix, out *outputs) {
	var again []*entry
	for sub := range s.overlapRefused {
		if sub != gone && sub.Overlaps(gone) {
			if e, ok := s.peers[sub]; ok {
				again = append(again, e)
			}
		}
	}
	for _, e := range again {
		l := e.lease
		s.applyLease(&l, out)
	}
}
