package backend

import (
	"log/slog"
	"net/netip"
	"sync"

	"github.com/overlayd/overlayd/subnet"
)

// claimed is a desired neighbour (per IP, a peer subnet's network
// address) or FDB entry (per VTEP MAC): the peer that wants it, whose MAC
// or destination it is, and how many peers ask for the key. Two leases
// with the same network address are a broken cluster, but removing one of
// them must not take the other's entry away; peers sharing a MAC (cloned
// VMs) cannot both be reached, and the latest one wins. The wanted values
// are read from the owner, not copied (one copy per peer).
type claimed struct {
	owner  *peer
	claims int32
}

// neighWant is the desired neighbour for one IP: the owner's MAC.
type neighWant struct{ mac [6]byte }

// fdbWant is the desired FDB destination for one VTEP MAC: the owner's
// underlay address.
type fdbWant struct{ dst netip.Addr }

// keySet is a set of entry keys.
type keySet[K comparable] map[K]struct{}

func (s keySet[K]) add(k K)              { s[k] = struct{}{} }
func (s keySet[K]) has(k K) bool         { _, ok := s[k]; return ok }
func (s keySet[K]) remove(k K)           { delete(s, k) }
func newKeySet[K comparable]() keySet[K] { return keySet[K]{} }

// reset empties the set after it held peak keys. A set that was large is
// replaced rather than cleared, because ranging over a cleared map still
// walks all of its old capacity: after the first sync of 10,000 peers,
// every later one-event pass would pay for it.
func (s *keySet[K]) reset(peak int) {
	if peak > smallSet {
		*s = keySet[K]{}
		return
	}
	clear(*s)
}

// smallSet is the size up to which a key set is cleared and reused.
const smallSet = 64

// dirtyKeys are the dirty sets of the three trackers: the entries whose
// desired state changed since the last pass, the only ones an incremental
// pass compares and writes. Inputs mark them through the desired state.
type dirtyKeys struct {
	neigh   *keySet[addr16]
	fdb     *keySet[[6]byte]
	route   *keySet[routeKey]
	nexthop *keySet[uint32]
}

func (d dirtyKeys) len() int { return len(*d.neigh) + len(*d.fdb) + len(*d.route) + len(*d.nexthop) }

// desiredState is the pure function of the peer set: the peers keyed by
// subnet (which also gives the desired route per destination), the
// neighbour per IP and the FDB destination per MAC. Every change marks the
// keys it touches dirty (in the trackers' dirty sets, see newTables), so an
// event costs O(1) here.
type desiredState struct {
	log *slog.Logger
	// mu guards, against Status (peerRows), the peers map and the fields
	// of its peers that Status shows (publicIP, mac, dst, direct, pending,
	// err). The loop is their only writer: it takes mu only to change them
	// and reads them without it.
	mu sync.Mutex
	// snapshot: the peers are a complete set (the first ReplacePeers was
	// applied), not only early peers of a first list; guarded by mu.
	snapshot bool
	peers    map[netip.Prefix]*peer
	neigh    map[addr16]claimed
	fdb      map[[6]byte]claimed
	// nexthop is the peer per nexthop id, in nexthop route mode
	// (nexthops true); network derives the ids.
	nexthop  map[uint32]*peer
	nexthops bool
	network  netip.Prefix
	dirty    dirtyKeys
}

func newDesiredState(log *slog.Logger) *desiredState {
	n, f, rt, nh := newKeySet[addr16](), newKeySet[[6]byte](), newKeySet[routeKey](), newKeySet[uint32]()
	return &desiredState{
		log:   log,
		peers: map[netip.Prefix]*peer{},
		neigh: map[addr16]claimed{},
		fdb:   map[[6]byte]claimed{},
		// Sets of its own until newTables points these at the trackers'.
		nexthop: map[uint32]*peer{},
		dirty:   dirtyKeys{neigh: &n, fdb: &f, route: &rt, nexthop: &nh},
	}
}

// add inserts a peer that is not in the set yet.
func (d *desiredState) add(p *peer) {
	d.mu.Lock()
	d.peers[p.subnet] = p
	d.mu.Unlock()
	d.claim(p)
}

// remove takes a peer out of the set.
func (d *desiredState) remove(p *peer) {
	d.unclaim(p)
	d.mu.Lock()
	delete(d.peers, p.subnet)
	d.mu.Unlock()
}

// replace swaps the entries of old (in the set) for those of p, keeping
// old's identity.
func (d *desiredState) replace(old, p *peer) {
	d.unclaim(old)
	d.mu.Lock()
	old.publicIP, old.mac, old.dst, old.direct = p.publicIP, p.mac, p.dst, p.direct
	d.mu.Unlock()
	d.claim(old)
}

func (d *desiredState) claim(p *peer) {
	d.dirty.route.add(routeKeyOf(p.subnet, 0))
	d.claimNexthop(p)
	if p.direct {
		return
	}
	ip := addr16Of(p.subnet.Addr())
	if other := claimKey(d.neigh, ip, p); other != nil {
		d.log.Warn("two peer leases share a neighbour address; the newer one wins",
			"address", p.subnet.Addr(), "lease", subnet.KeyName(p.subnet), "other_lease", subnet.KeyName(other.subnet))
	}
	d.dirty.neigh.add(ip)
	if other := claimKey(d.fdb, p.mac, p); other != nil {
		d.log.Warn("two peer leases share a VTEP MAC; the FDB entry follows the newer one",
			"mac", macString(p.mac), "lease", subnet.KeyName(p.subnet), "other_lease", subnet.KeyName(other.subnet))
	}
	d.dirty.fdb.add(p.mac)
}

func (d *desiredState) unclaim(p *peer) {
	d.dirty.route.add(routeKeyOf(p.subnet, 0))
	d.unclaimNexthop(p)
	if p.direct {
		return
	}
	ip := addr16Of(p.subnet.Addr())
	if unclaimKey(d, d.neigh, ip, p, func(q *peer) bool { return q.subnet.Addr() == p.subnet.Addr() }) {
		d.dirty.neigh.add(ip)
	}
	if unclaimKey(d, d.fdb, p.mac, p, func(q *peer) bool { return q.mac == p.mac }) {
		d.dirty.fdb.add(p.mac)
	}
}

// claimKey makes p the owner of k, one more claim on it, and returns the
// previous owner when another peer held it.
func claimKey[K comparable](m map[K]claimed, k K, p *peer) (other *peer) {
	c := m[k]
	if c.claims > 0 && c.owner != p {
		other = c.owner
	}
	m[k] = claimed{owner: p, claims: c.claims + 1}
	return other
}

// unclaimKey takes p's claim on k away, handing the key to another peer
// that matches when p owned it and claims remain; it reports whether k
// was claimed.
func unclaimKey[K comparable](d *desiredState, m map[K]claimed, k K, p *peer, match func(*peer) bool) bool {
	c, ok := m[k]
	if !ok {
		return false
	}
	if c.claims--; c.claims <= 0 {
		delete(m, k)
		return true
	}
	if c.owner == p {
		if q := d.otherClaimant(p, match); q != nil {
			c.owner = q
		}
	}
	m[k] = c
	return true
}

// otherClaimant finds another non-direct peer matching; O(N), but only
// reached when two leases collide on a key.
func (d *desiredState) otherClaimant(p *peer, match func(*peer) bool) *peer {
	for _, q := range d.peers {
		if q != p && !q.direct && match(q) {
			return q
		}
	}
	return nil
}

// routeWant describes the desired route to a peer subnet: via gw, or
// through the nexthop object nhid.
type routeWant struct {
	gw     netip.Addr
	direct bool
	nhid   uint32
}

// route returns the desired route for dst and the peer wanting it.
func (d *desiredState) route(dst netip.Prefix) (routeWant, *peer) {
	p, ok := d.peers[dst]
	if !ok {
		return routeWant{}, nil
	}
	return p.routeWant(), p
}

// routeWant is the route p wants to its subnet.
func (p *peer) routeWant() routeWant {
	if p.direct {
		return routeWant{gw: p.dst, direct: true}
	}
	return routeWant{gw: p.subnet.Addr(), nhid: p.nhid}
}
