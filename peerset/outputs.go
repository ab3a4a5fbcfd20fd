package peerset

import (
	"net/netip"
	"slices"
)

// outputs collects what one Step tells the consumers.
type outputs struct {
	// replace: a snapshot was applied; the consumers get the complete set.
	replace bool
	// early: leases of a first list still being read were applied.
	early   bool
	changes []Change
	byPeer  map[netip.Prefix]int // subnet → index in changes

	cands   []Candidate
	dropped []netip.Prefix
	log     changeLog
}

// put records c, replacing an earlier change of the same subnet: a short
// list is scanned, a long one indexed.
func (o *outputs) put(c Change) {
	if o.byPeer == nil && len(o.changes) >= smallBatch {
		o.byPeer = make(map[netip.Prefix]int, 2*len(o.changes))
		for i, x := range o.changes {
			o.byPeer[x.Peer.Subnet] = i
		}
	}
	if o.byPeer == nil {
		for i := range o.changes {
			if o.changes[i].Peer.Subnet == c.Peer.Subnet {
				o.changes[i] = c
				return
			}
		}
		o.changes = append(o.changes, c)
		return
	}
	if i, ok := o.byPeer[c.Peer.Subnet]; ok {
		o.changes[i] = c
		return
	}
	o.byPeer[c.Peer.Subnet] = len(o.changes)
	o.changes = append(o.changes, c)
}

// smallBatch is the number of changes kept without an index.
const smallBatch = 16

func (o *outputs) peer(p Peer) { o.put(Change{Peer: p}) }
func (o *outputs) keep(sub netip.Prefix, why string) {
	o.put(Change{Peer: Peer{Subnet: sub, Keep: why}})
}
func (o *outputs) removed(sub netip.Prefix)       { o.put(Change{Peer: Peer{Subnet: sub}, Removed: true}) }
func (o *outputs) candidate(c Candidate)          { o.cands = append(o.cands, c) }
func (o *outputs) dropCandidate(sub netip.Prefix) { o.dropped = append(o.dropped, sub) }

// flush tells the consumers what the Step changed: the complete sets after
// a snapshot, else the changes; the filter's addresses when they changed.
func (s *Set) flush(out *outputs) {
	out.log.report(s.log)
	s.publishRefused()
	if !s.haveSnapshot {
		s.flushEarly(out)
		return
	}
	if out.replace {
		s.o.Peers.ReplacePeers(s.allPeers())
		if s.o.Candidates != nil {
			s.o.Candidates.ReplaceCandidates(s.allCandidates())
		}
	} else {
		if len(out.changes) > 0 {
			s.o.Peers.UpdatePeers(out.changes)
		}
		if s.o.Candidates != nil && (len(out.cands) > 0 || len(out.dropped) > 0) {
			s.o.Candidates.UpdateCandidates(out.cands, out.dropped)
		}
	}
	if changed := s.addrs.changed(); s.o.Addrs != nil && (changed || out.replace) {
		s.o.Addrs.SetAddrs(s.addrs.list())
	}
}

// flushEarly hands the changes that early leases made to a peer sink that
// takes them before the snapshot. Candidates and filter addresses wait for
// the snapshot.
func (s *Set) flushEarly(out *outputs) {
	if es, ok := s.o.Peers.(EarlySink); ok && out.early && len(out.changes) > 0 {
		es.UpdateEarlyPeers(out.changes)
	}
}

func (s *Set) allPeers() []Peer {
	out := make([]Peer, 0, len(s.peers))
	for sub, e := range s.peers {
		if !e.withdrawn() {
			out = append(out, s.peerOf(sub, e))
		}
	}
	return out
}

// allCandidates returns the candidates sorted by subnet (probes go out in
// a stable order, and tests can rely on it).
func (s *Set) allCandidates() []Candidate {
	var out []Candidate
	for sub, e := range s.peers {
		if e.hasGood && e.good.privateIP().IsValid() {
			out = append(out, candidateOf(sub, &e.good))
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	return out
}

// addrCounts counts the entries that admit each address through the peer
// filter, so that the set is kept in O(1) per change.
type addrCounts struct {
	n map[netip.Addr]int
	// before holds, for each address touched since the last flush, whether
	// it was in the set then.
	before map[netip.Addr]bool
}

// filterAddrs are the addresses an entry's VXLAN may come from, from its
// last good state: its PublicIP (the NAT'd source) and, only while it is
// verified same-site, its OverlaydPrivateIP (then its destination).
func (s *Set) filterAddrs(e *entry) [2]netip.Addr {
	if !e.hasGood {
		return [2]netip.Addr{}
	}
	out := [2]netip.Addr{e.good.publicIP}
	if dst := e.dst(); dst != e.good.publicIP {
		out[1] = dst
	}
	return out
}

func (c *addrCounts) touch(a netip.Addr) {
	if c.before == nil {
		c.before = map[netip.Addr]bool{}
	}
	if _, ok := c.before[a]; !ok {
		c.before[a] = c.n[a] > 0
	}
}

func (c *addrCounts) hold(s *Set, e *entry) {
	if s.o.Addrs == nil {
		return
	}
	for _, a := range s.filterAddrs(e) {
		if a.IsValid() {
			c.touch(a)
			c.n[a]++
		}
	}
}

func (c *addrCounts) release(s *Set, e *entry) {
	if s.o.Addrs == nil {
		return
	}
	for _, a := range s.filterAddrs(e) {
		if !a.IsValid() {
			continue
		}
		c.touch(a)
		if c.n[a]--; c.n[a] <= 0 {
			delete(c.n, a)
		}
	}
}

// changed reports whether the set differs from the one at the last call.
func (c *addrCounts) changed() bool {
	diff := false
	for a, was := range c.before {
		if (c.n[a] > 0) != was {
			diff = true
		}
	}
	c.before = nil
	return diff
}

// list returns the addresses, sorted.
func (c *addrCounts) list() []netip.Addr {
	out := make([]netip.Addr, 0, len(c.n))
	for a := range c.n {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
