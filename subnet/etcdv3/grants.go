package etcdv3

import (
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// UnknownExpiration is the Expiration reported for a key whose etcd lease
// this Registry did not grant (see the package comment). It is non-zero,
// so such a lease is not a reservation, and lies in the past.
func UnknownExpiration() time.Time { return time.Unix(0, 0).UTC() }

// grantedLeases remembers when the etcd leases this Registry granted
// expire, so its own lease's expiration is exact without a TimeToLive RPC.
type grantedLeases struct {
	mu      sync.Mutex
	expires map[clientv3.LeaseID]time.Time
}

func newGrantedLeases() *grantedLeases {
	return &grantedLeases{expires: make(map[clientv3.LeaseID]time.Time)}
}

// remember records a grant and forgets grants that have expired by now,
// so the map holds only live leases.
func (g *grantedLeases) remember(id clientv3.LeaseID, expires, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for old, at := range g.expires {
		if at.Before(now) {
			delete(g.expires, old)
		}
	}
	g.expires[id] = expires
}

func (g *grantedLeases) forget(id clientv3.LeaseID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.expires, id)
}

func (g *grantedLeases) lookup(id clientv3.LeaseID) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.expires[id]
	return at, ok
}

// expiration is the Expiration to report for a key carrying etcd lease id.
func (g *grantedLeases) expiration(id clientv3.LeaseID) time.Time {
	if id == clientv3.NoLease {
		return time.Time{}
	}
	if at, ok := g.lookup(id); ok {
		return at
	}
	return UnknownExpiration()
}
