package subnet

import (
	"context"
	"errors"
	"fmt"
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
	w := &peerWatch{m: m, sink: sink, warned: newWarnedKeys(maxWarnedKeys), famWarned: newWarnedKeys(maxWarnedKeys)}
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
	known  map[LeaseID]Lease // nil until the first snapshot
	warned *warnedKeys       // malformed keys already logged
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
	for s := range malformed {
		if _, ok := peers[s]; ok || s == own {
			continue
		}
		if l, ok := w.known[s]; ok {
			peers[s] = l
		} else {
			peers[s] = Lease{Subnet: s.Subnet, IPv6Subnet: s.IPv6Subnet, Unreadable: true}
		}
	}
	if w.known == nil {
		w.known = peers
		all := sortedLeases(peers)
		w.logSnapshot(all)
		w.sink.ReplacePeers(all)
		w.m.metrics.peers.Set(float64(len(peers)))
		return
	}
	events := diffPeers(w.known, peers)
	w.known = peers
	w.send(events)
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
		if _, known := w.known[s]; !known && s != own {
			l := Lease{Subnet: s.Subnet, IPv6Subnet: s.IPv6Subnet, Unreadable: true}
			w.known[s] = l
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
	old, known := w.known[s]
	if ev.Type == EventRemoved {
		if !known {
			return Event{}, false
		}
		delete(w.known, s)
		return Event{Type: EventRemoved, Lease: old}, true
	}
	w.known[s] = ev.Lease
	if known && AttrsEqual(old.Attrs, ev.Lease.Attrs) {
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
	w.m.metrics.peers.Set(float64(len(w.known)))
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

// diffPeers returns the events that turn old into cur: additions and
// changes, then removals carrying the last attributes seen.
func diffPeers(old, cur map[LeaseID]Lease) []Event {
	var events []Event
	for _, l := range sortedLeases(cur) {
		if o, ok := old[l.ID()]; !ok || !AttrsEqual(o.Attrs, l.Attrs) {
			events = append(events, Event{Type: EventAdded, Lease: l})
		}
	}
	for _, o := range sortedLeases(old) {
		if _, ok := cur[o.ID()]; !ok {
			events = append(events, Event{Type: EventRemoved, Lease: o})
		}
	}
	return events
}

func sortedLeases(m map[LeaseID]Lease) []Lease {
	out := make([]Lease, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lease) int {
		if c := comparePrefix(a.Subnet, b.Subnet); c != 0 {
			return c
		}
		return comparePrefix(a.IPv6Subnet, b.IPv6Subnet)
	})
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
