package backend

import (
	"context"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/peerset"
)

// applyPending folds the queued inputs into the desired state. Changes
// queued before the first snapshot are dropped: the snapshot supersedes
// them. Early peers (UpdateEarlyPeers) count only before it.
func (r *Reconciler) applyPending() {
	in := r.takePending()
	if in.hasReplace {
		if !r.haveSnapshot && r.early {
			// The early passes deleted nothing; the snapshot's first pass
			// is a full one, which removes what is stale.
			r.nextFull = time.Time{}
		}
		r.applyReplace(in.replace)
		r.haveSnapshot = true
		r.want.mu.Lock()
		r.want.snapshot = true
		r.want.mu.Unlock()
	}
	if !r.haveSnapshot && len(in.early) > 0 {
		for i := range in.early {
			r.applyChange(&in.early[i])
		}
		r.early = true
	}
	if r.haveSnapshot {
		for i := range in.events {
			r.applyChange(&in.events[i])
		}
	}
	clear(in.events)
	r.spareEvents = in.events[:0]
}

// earlyPass programs early peers before the first snapshot: a full pass
// that reads the kernel and adds what is missing but deletes nothing
// (fullPass skips the stale scans before the snapshot), then incremental
// passes for the peers that come after. In route mode auto, with nexthop
// objects available, it waits until the count reaches the threshold (the
// mode is then known) or the snapshot comes, so that a start never
// programs onlink routes only to move them to nexthops.
func (r *Reconciler) earlyPass(ctx context.Context) {
	if !r.early {
		return
	}
	defer r.flushStatus()
	if !r.earlyModeSettled() {
		return
	}
	r.decideRouteMode()
	switch {
	case !r.loaded:
		r.runPass(ctx, true)
	case r.want.dirty.len() > 0:
		r.runPass(ctx, false)
	}
}

// earlyModeSettled: the route mode the snapshot will have is known now.
func (r *Reconciler) earlyModeSettled() bool {
	if r.opts.RouteMode != RouteModeAuto || len(r.want.peers) >= r.opts.NexthopThreshold {
		return true
	}
	ok, _ := r.nexthopSupport()
	return !ok
}

func (r *Reconciler) applyReplace(peers []peerset.Peer) {
	r.reserve(len(peers))
	present := make(map[netip.Prefix]struct{}, len(peers))
	for i := range peers {
		present[peers[i].Subnet] = struct{}{}
		r.applyPeer(&peers[i])
	}
	for s, p := range r.want.peers {
		if _, ok := present[s]; !ok {
			r.removePeer(p)
		}
	}
	for s := range r.skipped {
		if _, ok := present[s]; !ok {
			delete(r.skipped, s)
		}
	}
}

func (r *Reconciler) applyChange(c *peerset.Change) {
	if !c.Removed {
		r.applyPeer(&c.Peer)
		return
	}
	s := c.Peer.Subnet
	if _, wasSkipped := r.skipped[s]; wasSkipped {
		delete(r.skipped, s)
		r.forgetKept(s)
	}
	if p, ok := r.want.peers[s]; ok {
		r.removePeer(p)
	}
}

// applyPeer adds or updates a peer. A subnet to keep as it is (its lease
// cannot be used) changes nothing: its peer, if any, stays, and without
// one its kernel entries are kept (see keptEntries).
func (r *Reconciler) applyPeer(in *peerset.Peer) {
	if in.Keep != "" {
		r.skipped[in.Subnet] = in.Keep
		return
	}
	delete(r.skipped, in.Subnet)
	p := peerFrom(*in)
	p.direct = r.decideDirect(p.dst)
	old, ok := r.want.peers[p.subnet]
	switch {
	case !ok:
		np := new(peer)
		*np = p
		np.pending = np.kinds()
		r.want.add(np)
	case old.sameEntries(&p):
		if old.publicIP != p.publicIP {
			r.want.mu.Lock()
			old.publicIP = p.publicIP
			r.want.mu.Unlock()
		}
	default:
		r.want.replace(old, &p)
		r.peerPending(old)
	}
}

func (r *Reconciler) removePeer(p *peer) {
	if p.programmed() {
		r.programmed--
	}
	r.want.remove(p)
}

// forgetKept marks the entries a skipped subnet kept dirty, so that the
// next pass deletes them now that its lease is gone.
func (r *Reconciler) forgetKept(s netip.Prefix) {
	if _, known := r.want.peers[s]; known {
		return
	}
	r.want.dirty.route.add(routeKeyOf(s, 0))
	r.want.dirty.neigh.add(addr16Of(s.Addr()))
	if n, ok := r.believed.neigh[addr16Of(s.Addr())]; ok && n.mac != ([6]byte{}) {
		r.want.dirty.fdb.add(n.mac)
	}
}

// decideDirect applies DirectRouting: a peer whose underlay address the
// kernel reaches without a gateway gets one route via that address. The
// answer is cached per address until the next full resync.
func (r *Reconciler) decideDirect(dst netip.Addr) bool {
	if !r.opts.DirectRouting {
		return false
	}
	if v, ok := r.directCache[dst]; ok {
		return v
	}
	routes, err := r.k.RouteGet(dst.AsSlice())
	if err != nil {
		r.log.Debug("route lookup for DirectRouting failed; using VXLAN", "dst", dst, "error", err)
	}
	v := err == nil && len(routes) == 1 && routes[0].Gw == nil
	r.directCache[dst] = v
	return v
}

// refreshDirect re-decides DirectRouting for every peer (full resync).
func (r *Reconciler) refreshDirect() {
	if !r.opts.DirectRouting {
		return
	}
	clear(r.directCache)
	for _, p := range r.want.peers {
		if d := r.decideDirect(p.dst); d != p.direct {
			q := *p
			q.direct = d
			r.want.replace(p, &q)
			r.peerPending(p)
		}
	}
}

// maxPeerLines scales the pass log: a pass of more than 3×maxPeerLines
// writes is logged at info (the per-peer change lines are peerset's).
const maxPeerLines = 8
