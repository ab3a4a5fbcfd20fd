package backend

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
)

// applyPending folds the queued inputs into the desired state. Events
// queued before the first snapshot are dropped: the snapshot supersedes
// them.
func (r *Reconciler) applyPending() {
	in := r.takePending()
	var chg changeLog
	if in.hasReplace {
		r.applyReplace(in.replace, &chg)
		r.haveSnapshot = true
	}
	if r.haveSnapshot {
		for i := range in.events {
			r.applyEvent(&in.events[i], &chg)
		}
	}
	clear(in.events)
	r.spareEvents = in.events[:0]
	chg.report(r.log)
}

func (r *Reconciler) applyReplace(leases []subnet.Lease, chg *changeLog) {
	present := make(map[netip.Prefix]struct{}, len(leases))
	for i := range leases {
		present[leases[i].Subnet] = struct{}{}
		r.applyLease(&leases[i], chg)
	}
	for s, p := range r.want.peers {
		if _, ok := present[s]; !ok {
			r.removePeer(p, chg)
		}
	}
	for s := range r.skipped {
		if _, ok := present[s]; !ok {
			delete(r.skipped, s)
		}
	}
}

func (r *Reconciler) applyEvent(ev *subnet.Event, chg *changeLog) {
	if ev.Type == subnet.EventRemoved {
		s := ev.Lease.Subnet
		if _, wasSkipped := r.skipped[s]; wasSkipped {
			delete(r.skipped, s)
			r.forgetKept(s)
		}
		if p, ok := r.want.peers[s]; ok {
			r.removePeer(p, chg)
		}
		return
	}
	r.applyLease(&ev.Lease, chg)
}

// applyLease adds or updates the peer a lease describes. A lease that is
// not a vxlan peer removes the peer of that subnet; a malformed one is
// skipped with a warning and changes nothing.
func (r *Reconciler) applyLease(l *subnet.Lease, chg *changeLog) {
	if l.Unreadable {
		// The lease manager warned already; keep what the kernel has for
		// this subnet (see keptEntries).
		r.skipped[l.Subnet] = errUnreadableLease.Error()
		r.log.Debug("keeping the entries of a subnet whose lease is unreadable", "lease", subnet.KeyName(l.Subnet))
		return
	}
	p, err := r.rules.parsePeer(*l)
	if errors.Is(err, errIgnoredLease) {
		r.log.Debug("lease ignored", "lease", subnet.KeyName(l.Subnet), "reason", err)
		if old, ok := r.want.peers[l.Subnet]; ok {
			r.removePeer(old, chg)
		}
		return
	}
	if err != nil {
		r.warnSkipped(l.Subnet, err)
		return
	}
	delete(r.skipped, l.Subnet)
	p.direct = r.decideDirect(p.dst)
	old, ok := r.want.peers[p.subnet]
	switch {
	case !ok:
		np := new(peer)
		*np = p
		np.pending = np.kinds()
		r.want.add(np)
		r.touched.add(np.subnet)
		chg.note("peer added", np)
	case old.sameEntries(&p):
		if old.publicIP != p.publicIP {
			old.publicIP = p.publicIP
			r.touched.add(old.subnet)
		}
	default:
		r.want.replace(old, &p)
		r.peerPending(old)
		chg.note("peer changed", old)
	}
}

func (r *Reconciler) removePeer(p *peer, chg *changeLog) {
	if p.programmed() {
		r.programmed--
	}
	r.want.remove(p)
	r.touched.add(p.subnet)
	chg.note("peer removed", p)
}

// forgetKept marks the entries a skipped subnet kept dirty, so that the
// next pass deletes them now that its lease is gone.
func (r *Reconciler) forgetKept(s netip.Prefix) {
	if _, known := r.want.peers[s]; known {
		return
	}
	r.want.dirty.route.add(routeKey{dst: s})
	r.want.dirty.neigh.add(s.Addr())
	if n, ok := r.believed.neigh[s.Addr()]; ok && n.mac != ([6]byte{}) {
		r.want.dirty.fdb.add(n.mac)
	}
}

// errUnreadableLease marks a subnet whose lease value cannot be decoded.
var errUnreadableLease = errors.New("lease value cannot be decoded; keeping its kernel entries as they are")

// warnSkipped warns about a malformed lease once per subnet and reason.
func (r *Reconciler) warnSkipped(s netip.Prefix, err error) {
	reason := err.Error()
	if r.skipped[s] == reason {
		return
	}
	r.skipped[s] = reason
	r.log.Warn("skipping malformed peer lease", "lease", subnet.KeyName(s), "reason", reason)
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

// changeLog collects what an input batch did to the peer set, to log one
// line per peer at small scale and one aggregate line at large scale.
type changeLog struct {
	counts  map[string]int
	details []peerChange
}

type peerChange struct {
	what string
	p    peer
}

// maxPeerLines is the number of changes logged one per line; above it a
// batch is logged as one line of counts.
const maxPeerLines = 8

func (c *changeLog) note(what string, p *peer) {
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[what]++
	if len(c.details) <= maxPeerLines {
		c.details = append(c.details, peerChange{what: what, p: *p})
	}
}

func (c *changeLog) report(log *slog.Logger) {
	if len(c.details) == 0 {
		return
	}
	if len(c.details) <= maxPeerLines {
		for _, d := range c.details {
			log.Info(d.what, "lease", subnet.KeyName(d.p.subnet), "public_ip", d.p.publicIP,
				"vtep_mac", macString(d.p.mac), "dst", d.p.dst, "direct", d.p.direct)
		}
		return
	}
	log.Info("peers changed", "added", c.counts["peer added"], "changed", c.counts["peer changed"],
		"removed", c.counts["peer removed"])
}
