package nftrules

import (
	"fmt"
	"net/netip"
)

// Install brings the filter in place before any peer is known, so that
// the VXLAN device never carries traffic unfiltered: the set keeps the
// elements a set left by an earlier run holds (a restart does not cut the
// peers that run served), or starts empty on a first start (every VXLAN
// packet dropped until SetPeers: fail closed). An error means the filter
// is not in place: the caller must not go on as if it were.
func (f *PeerFilter) Install() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	have, err := f.kernel.Table(f.spec.Family, f.spec.Table)
	if err != nil {
		f.metrics.Errors.Inc()
		return fmt.Errorf("peer filter: read table %s: %w", f.spec.Table, err)
	}
	var kept []netip.Addr
	if have != nil && have.Sets[PeerSet] != nil {
		kept = have.Sets[PeerSet].Elements
	}
	f.peers = f.normalize(kept)
	f.ready = true
	f.metrics.Peers.Set(float64(len(f.peers)))
	return f.ensureLocked()
}
