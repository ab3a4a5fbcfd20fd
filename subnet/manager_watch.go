package subnet

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"net/netip"
	"path"
	"slices"
	"time"
)

// RunWatch delivers the peer lease set to sink until ctx ends (then it
// returns nil) or our lease is lost for good (an error wrapping
// ErrOwnLeaseLost). It lists, sends ReplacePeers, then watches from the
// list's revision; lost history means a re-list whose differences are
// sent as UpdatePeers; other failures reconnect with jittered exponential
// backoff and re-list. Unchanged re-puts are not forwarded.
func (m *Manager) RunWatch(ctx context.Context, sink PeerSink) error {
	w := &peerWatch{m: m, sink: sink, warned: newWarnedKeys(maxWarnedKeys), famWarned: newWarnedKeys(maxWarnedKeys),
		seed: maphash.MakeSeed()}
	failures := 0
	for {
		progressed, err := w.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrOwnLeaseLost) {
			return err
		}
		if progressed {
			failures = 0
		}
		failures++
		reason := "error"
		if errors.Is(err, ErrHistoryLost) {
			reason = "history_lost"
		}
		m.metrics.watchRestarts.WithLabelValues(reason).Inc()
		// Lost history is expected after compaction: re-list at once, but
		// back off if it keeps happening without progress.
		if reason == "history_lost" && failures == 1 {
			m.log.Warn("lease watch history lost; re-listing", "error", err)
			continue
		}
		delay := m.backoff(failures)
		m.log.Warn("lease watch failed; reconnecting", "error", err, "retry_in", delay)
		if Sleep(ctx, m.clock, delay) != nil {
			return nil
		}
	}
}

// backoff is the jittered exponential delay after n consecutive failures:
// backoffMin doubling up to backoffMax, each drawn from [d/2, d].
func (m *Manager) backoff(n int) time.Duration {
	d := m.backoffMin
	for i := 1; i < n && d < m.backoffMax; i++ {
		d *= 2
	}
	d = min(d, m.backoffMax)
	return d/2 + time.Duration(m.intN(int(d/2)+1))
}

// peerWatch is RunWatch's state: the peers the sink knows about.
type peerWatch struct {
	m      *Manager
	sink   PeerSink
	known  *knownLeases // nil until the first snapshot
	seed   maphash.Seed // of the known leases' fingerprints
	warned *warnedKeys  // malformed keys already logged
	// famWarned are the peer keys already warned to lack a family the
	// config enables (checkFamilies).
	famWarned *warnedKeys
}

// cycle lists and watches once; progressed reports that the list
// succeeded and the watch then delivered a batch or ran for a while.
func (w *peerWatch) cycle(ctx context.Context) (progressed bool, err error) {
	rev, err := w.relist(ctx)
	if err != nil {
		return false, err
	}
	return w.watch(ctx, rev)
}

func (w *peerWatch) relist(ctx context.Context) (int64, error) {
	list, fresh, err := w.m.listForStart(ctx, true)
	if err != nil {
		return 0, fmt.Errorf("list leases: %w", err)
	}
	w.warnSkipped(list.Skipped)
	w.warned.keepOnly(list.Skipped)
	own := w.m.Lease().ID()
	peers := make(map[LeaseID]Lease, len(list.Leases))
	var ownLease *Lease
	for i, l := range list.Leases {
		if own.IsValid() && l.ID() == own {
			ownLease = &list.Leases[i]
			continue
		}
		peers[l.ID()] = l
	}
	w.deliverSnapshot(peers, skippedSubnets(list.Skipped))
	if !own.IsValid() || !fresh {
		// The start list predates Acquire's write of our lease; the watch
		// from its revision replays that write and whatever came after.
		return list.Revision, nil
	}
	if ownLease == nil {
		err = w.m.recreateOwnLease(ctx, own, "it is missing from the lease list")
	} else if !w.m.isOurs(ownLease.Attrs) {
		err = w.ownTaken(*ownLease)
	}
	return list.Revision, err
}

// deliverSnapshot sends the first snapshot whole, and later ones as the
// difference from what the sink knows. A known peer whose entry became
// malformed is kept: a bad value never removes a peer.
func (w *peerWatch) deliverSnapshot(peers map[LeaseID]Lease, malformed map[LeaseID]bool) {
	own := w.m.Lease().ID()
	kept := map[LeaseID]knownLease{}
	for s := range malformed {
		if _, ok := peers[s]; ok || s == own {
			continue
		}
		if r, ok := w.knownRecord(s); ok {
			kept[s] = r
		} else {
			peers[s] = Lease{Subnet: s.Subnet, IPv6Subnet: s.IPv6Subnet, Unreadable: true}
		}
	}
	all := sortedLeases(peers)
	next := newKnownLeases(w.seed, len(peers)+len(kept))
	for i := range all {
		next.m[all[i].ID()] = next.record(&all[i])
	}
	maps.Copy(next.m, kept)
	prev := w.known
	w.known = next
	if prev == nil {
		w.logSnapshot(all)
		w.sink.ReplacePeers(all)
		w.m.metrics.peers.Set(float64(len(next.m)))
		return
	}
	w.send(diffKnown(prev, next, all))
}

// knownRecord is what the watch keeps of peer s, if it knows it.
func (w *peerWatch) knownRecord(s LeaseID) (knownLease, bool) {
	if w.known == nil {
		return knownLease{}, false
	}
	r, ok := w.known.m[s]
	return r, ok
}

// watch streams changes after rev until the stream breaks.
func (w *peerWatch) watch(ctx context.Context, rev int64) (progressed bool, err error) {
	start := w.m.clock.Now()
	defer func() {
		// A quiet watch that held up for a while was healthy too.
		progressed = progressed || w.m.clock.Now().Sub(start) >= w.m.backoffMax
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan WatchBatch)
	done := make(chan error, 1)
	go func() { done <- w.m.reg.WatchLeases(wctx, rev, out) }()
	for {
		select {
		case b := <-out:
			progressed = true
			if err := w.apply(ctx, b); err != nil {
				cancel()
				drain(out, done)
				return progressed, err
			}
		case err := <-done:
			if err == nil {
				err = errors.New("lease watch ended")
			}
			return progressed, fmt.Errorf("watch leases from revision %d: %w", rev+1, err)
		}
	}
}

// drain lets a canceled WatchLeases return even if it is sending.
func drain(out <-chan WatchBatch, done <-chan error) {
	for {
		select {
		case <-out:
		case <-done:
			return
		}
	}
}

func (w *peerWatch) apply(ctx context.Context, b WatchBatch) error {
	w.warnSkipped(b.Skipped)
	own := w.m.Lease().ID()
	var events []Event
	for s := range skippedSubnets(b.Skipped) {
		// A peer we know keeps its last good lease; an unknown subnet with
		// an unreadable value is announced so that sinks keep its entries.
		if _, known := w.known.m[s]; !known && s != own {
			l := Lease{Subnet: s.Subnet, IPv6Subnet: s.IPv6Subnet, Unreadable: true}
			w.known.m[s] = w.known.record(&l)
			events = append(events, Event{Type: EventAdded, Lease: l})
		}
	}
	for _, ev := range b.Events {
		// A key that now reads well (or went away) may be warned about again.
		w.warned.forget(ev.Lease.ID().KeyName())
		if own.IsValid() && ev.Lease.ID() == own {
			if err := w.ownEvent(ctx, ev); err != nil {
				return err
			}
			continue
		}
		if e, ok := w.applyPeerEvent(ev); ok {
			events = append(events, e)
		}
	}
	w.send(events)
	return nil
}

// applyPeerEvent updates the known set; ok false when nothing changed
// for the sink (an identical re-put, or the removal of an unknown peer).
func (w *peerWatch) applyPeerEvent(ev Event) (Event, bool) {
	s := ev.Lease.ID()
	old, known := w.known.m[s]
	if ev.Type == EventRemoved {
		if !known {
			return Event{}, false
		}
		delete(w.known.m, s)
		return old.removal(s), true
	}
	rec := w.known.record(&ev.Lease)
	w.known.m[s] = rec
	if known && old.sum == rec.sum && old.unreadable == rec.unreadable {
		return Event{}, false
	}
	return Event{Type: EventAdded, Lease: ev.Lease}, true
}

func (w *peerWatch) ownEvent(ctx context.Context, ev Event) error {
	if ev.Type == EventRemoved {
		return w.m.recreateOwnLease(ctx, ev.Lease.ID(), "it was deleted by someone else or expired")
	}
	if w.m.isOurs(ev.Lease.Attrs) {
		return nil // our own write
	}
	return w.ownTaken(ev.Lease)
}

func (w *peerWatch) ownTaken(l Lease) error {
	w.m.log.Error("our subnet's lease now carries another node's PublicIP or identity", "subnet", l.ID(), "public_ip", OwnLeaseAddr(l.Attrs), "node_id", l.Attrs.NodeID)
	return fmt.Errorf("%w: %s now carries PublicIP %s, node identity %q", ErrOwnLeaseLost, l.ID(), OwnLeaseAddr(l.Attrs), l.Attrs.NodeID)
}

func (w *peerWatch) send(events []Event) {
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		if e.Type == EventRemoved {
			w.logPeer("peer removed", e.Lease)
			w.famWarned.forget(e.Lease.ID().KeyName())
		} else {
			w.logPeer("peer added", e.Lease)
			w.checkFamilies(e.Lease)
		}
	}
	w.sink.UpdatePeers(events)
	w.m.metrics.peers.Set(float64(len(w.known.m)))
}

// logSnapshot logs the first snapshot: one line, and each peer at debug.
func (w *peerWatch) logSnapshot(all []Lease) {
	for _, l := range all {
		w.logPeer("peer added", l)
		w.checkFamilies(l)
	}
	w.m.log.Info("peers known from the first snapshot", "count", len(all))
}

// logPeer logs a peer change at debug level, with the lease key: the peer
// set's owner (package peerset) logs the one INFO line a change gets.
// Unreadable leases were already warned about.
func (w *peerWatch) logPeer(msg string, l Lease) {
	if l.Unreadable {
		return
	}
	w.m.log.Debug(msg, "key", l.ID().KeyName(), "public_ip", OwnLeaseAddr(l.Attrs), "backend", l.Attrs.BackendType)
}

// checkFamilies warns, once per key, about a peer lease without an IPv6
// subnet in a network whose config enables IPv6: flanneld v0.28 nodes
// crash allocating next to it (docs/compatibility.md, "IPv6 and
// dual-stack"). Nothing is done to the lease: it is not ours.
func (w *peerWatch) checkFamilies(l Lease) {
	if l.Unreadable || !w.m.cfg.EnableIPv6 || l.IPv6Subnet.IsValid() {
		return
	}
	key := l.ID().KeyName()
	if w.famWarned.add(key, "no IPv6 subnet") {
		w.m.log.Warn("a peer lease has no IPv6 subnet although the network config enables IPv6; "+
			"flanneld v0.28 nodes crash while allocating next to it: restart that node's agent with the IPv6 config, or delete the key",
			"key", key, "public_ip", OwnLeaseAddr(l.Attrs))
	}
}

// warnSkipped logs each malformed entry once per reason.
func (w *peerWatch) warnSkipped(skipped []SkippedKey) {
	for _, s := range skipped {
		reason := fmt.Sprint(s.Reason)
		if w.warned.add(s.Key, reason) {
			w.m.log.Warn("ignoring malformed lease entry", "key", s.Key, "reason", reason)
		}
	}
}

// diffKnown returns the events that turn prev into next (whose leases
// are cur, sorted): additions and changes first, then removals, each in
// key order.
func diffKnown(prev, next *knownLeases, cur []Lease) []Event {
	var events []Event
	for i := range cur {
		id := cur[i].ID()
		o, ok := prev.m[id]
		if r := next.m[id]; !ok || o.sum != r.sum || o.unreadable != r.unreadable {
			events = append(events, Event{Type: EventAdded, Lease: cur[i]})
		}
	}
	gone := make([]LeaseID, 0)
	for id := range prev.m {
		if _, ok := next.m[id]; !ok {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(gone, compareIDs)
	for _, id := range gone {
		events = append(events, prev.m[id].removal(id))
	}
	return events
}

// compareIDs orders lease keys by IPv4 subnet, then IPv6 subnet.
func compareIDs(a, b LeaseID) int {
	if c := comparePrefix(a.Subnet, b.Subnet); c != 0 {
		return c
	}
	return comparePrefix(a.IPv6Subnet, b.IPv6Subnet)
}

func sortedLeases(m map[LeaseID]Lease) []Lease {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b Lease) int { return compareIDs(a.ID(), b.ID()) })
	return out
}

// comparePrefix orders prefixes by address then length (invalid first).
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// skippedSubnets are the subnets named by malformed entries' keys.
func skippedSubnets(skipped []SkippedKey) map[LeaseID]bool {
	out := make(map[LeaseID]bool, len(skipped))
	for _, s := range skipped {
		if id, err := ParseLeaseIDName(path.Base(s.Key)); err == nil {
			out[id] = true
		}
	}
	return out
}
