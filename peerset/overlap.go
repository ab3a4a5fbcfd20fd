package peerset

import (
	"cmp"
	"net/netip"
)

// The overlap index counts the current peers' subnets (not withdrawn) by
// prefix length; the subnets themselves are the keys of Set.peers. With
// SubnetLen checked all peers have one length, and finding the peers a
// subnet overlaps is one map access; only when longer prefixes than the
// one looked up are current is the peer set scanned.
type overlapIndex map[int]int

// place counts e in the index (it is a current peer, good or kept).
func (s *Set) place(e *entry) {
	if e.indexed {
		return
	}
	e.indexed = true
	s.index[e.sub.Bits()]++
}

// unplace takes e out of the index and admits the refused leases that
// only its subnet kept out.
func (s *Set) unplace(e *entry, out *outputs) {
	if !e.indexed {
		return
	}
	e.indexed = false
	if s.index[e.sub.Bits()]--; s.index[e.sub.Bits()] <= 0 {
		delete(s.index, e.sub.Bits())
	}
	s.readmit(e.sub, out)
}

// overlapping returns the current peers other than e whose subnet overlaps
// e's.
func (s *Set) overlapping(e *entry) []*entry {
	sub := e.sub
	var out []*entry
	longer := false
	for bits := range s.index {
		if bits > sub.Bits() {
			longer = true
			continue
		}
		if q, ok := s.peers[netip.PrefixFrom(sub.Addr(), bits).Masked()]; ok && q != e && q.indexed {
			out = append(out, q)
		}
	}
	if longer {
		for p, q := range s.peers {
			if q.indexed && p.Bits() > sub.Bits() && sub.Contains(p.Addr()) {
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
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c < 0
	}
	if c := a.sub.Addr().Compare(b.sub.Addr()); c != 0 {
		return c < 0
	}
	return a.sub.Bits() < b.sub.Bits()
}

// readmit re-applies the leases refused for overlapping an older peer
// whose subnet overlaps gone, now that gone is no longer in the way.
func (s *Set) readmit(gone netip.Prefix, out *outputs) {
	var again []*entry
	for sub := range s.overlapRefused {
		if sub != gone && sub.Overlaps(gone) {
			if e, ok := s.peers[sub]; ok && e.raw != nil {
				again = append(again, e)
			}
		}
	}
	for _, e := range again {
		l := *e.raw
		s.applyLease(&l, out)
	}
}
