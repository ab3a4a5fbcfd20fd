package iptables

import (
	"fmt"
	"net/netip"
	"slices"
)

// Install brings the filter in place before any peer is known, so that
// the VXLAN device never carries traffic unfiltered: the set keeps the
// members a set left by an earlier run holds (a restart does not cut the
// peers that run served), or starts empty on a first start (every VXLAN
// packet dropped until SetPeers: fail closed). An error means the filter
// is not in place (ipset missing, no permission): the caller must not go
// on as if it were.
func (f *PeerFilter) Install() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept, err := f.liveMembers()
	if err != nil {
		f.metrics.Errors.Inc()
		return err
	}
	f.peers = f.normalizePeers(kept)
	f.ready = true
	f.metrics.Peers.Set(float64(len(f.peers)))
	return f.ensureLocked()
}

// liveMembers are the members of the live set; none when it is missing.
func (f *PeerFilter) liveMembers() ([]netip.Addr, error) {
	names, err := f.ipset.ListNames()
	if err != nil {
		return nil, fmt.Errorf("peer filter: list sets: %w", err)
	}
	if !slices.Contains(names, f.set) {
		return nil, nil
	}
	out, err := f.ipset.Save(f.set)
	if err != nil {
		return nil, fmt.Errorf("peer filter: read set %s: %w", f.set, err)
	}
	members, err := savedMembers(out, f.set)
	if err != nil {
		return nil, fmt.Errorf("peer filter: %w", err)
	}
	return members, nil
}
