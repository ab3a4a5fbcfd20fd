package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// passStats is what one pass did.
type passStats struct {
	full  bool
	adds  [numKinds]int
	dels  [numKinds]int
	drift [numKinds]int
	// kept counts wanted keys that are in the believed state after their
	// sync (found there, or written).
	kept     [numKinds]int
	failed   int
	firstErr error
}

func (s *passStats) count(kind entryKind, op writeOp) {
	if op == opAdd {
		s.adds[kind]++
	} else {
		s.dels[kind]++
	}
}

func (s *passStats) writes() (adds, dels, drift int) {
	for k := range numKinds {
		adds += s.adds[k]
		dels += s.dels[k]
		drift += s.drift[k]
	}
	return adds, dels, drift
}

func (r *Reconciler) failed(st *passStats, err error) {
	st.failed++
	if st.firstErr == nil {
		st.firstErr = err
	}
}

func (r *Reconciler) runPass(ctx context.Context, full bool) {
	start := r.clock.Now()
	st := passStats{full: full}
	var err error
	if full {
		err = r.fullPass(ctx, &st)
		r.fullErr = err
	} else {
		r.incrementalPass(&st)
	}
	r.afterPass(&st, err, start, r.clock.Now().Sub(start))
}

// fullPass re-reads the kernel and diffs everything. Adds go first
// (neighbour, FDB, route), then deletes (route, FDB, neighbour): per peer
// that is the safe order both ways, and keys of different peers never
// depend on each other. The delete scans run only when the kernel holds
// more of our entries than the wanted ones found there.
func (r *Reconciler) fullPass(ctx context.Context, st *passStats) error {
	if err := r.ensureDevice(ctx); err != nil {
		return err
	}
	r.refreshDirect()
	if why, dump := r.dumpReasonNow(r.clock.Now()); dump {
		if err := r.dumpKernel(why); err != nil {
			return err
		}
	}
	peakDirty := r.want.dirty.len()
	r.neigh.startFull()
	r.fdb.startFull()
	r.nexthop.startFull()
	r.route.startFull()
	// The tables are compared at once, then written one after another.
	// Adds may go out in batches; each table is sent in full before the
	// next one is queued: a route's nexthop exists before the route.
	var dn tableDiff[addr16]
	var df tableDiff[[6]byte]
	var dh tableDiff[uint32]
	var dr tableDiff[routeKey]
	inParallel(func() { dr = r.route.diff() }, func() { df = r.fdb.diff() },
		func() { dn = r.neigh.diff() }, func() { dh = r.nexthop.diff() })
	r.startBatching()
	r.neigh.syncDiff(r, dn, st)
	r.fdb.syncDiff(r, df, st)
	r.nexthop.syncDiff(r, dh, st)
	r.route.syncDiff(r, dr, st)
	if r.haveSnapshot {
		// Before the first snapshot (early peers) nothing is deleted.
		keep := r.keptEntries()
		r.route.syncStale(r, st, func(k routeKey) bool { return keep.route[k.dst()] && k.priority() == 0 })
		r.nexthop.syncStale(r, st, func(uint32) bool { return false })
		r.fdb.syncStale(r, st, func(mac [6]byte) bool { return keep.fdb[mac] })
		r.neigh.syncStale(r, st, func(ip addr16) bool { return keep.neigh[ip] })
	}
	r.stopBatching()
	r.neigh.endFull(peakDirty)
	r.fdb.endFull(peakDirty)
	r.nexthop.endFull(peakDirty)
	r.route.endFull(peakDirty)
	return nil
}

// inParallel runs the jobs on as many goroutines as there are processors,
// largest first, and returns when all are done.
func inParallel(jobs ...func()) {
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var next atomic.Int32
	work := func() {
		for i := int(next.Add(1)) - 1; i < len(jobs); i = int(next.Add(1)) - 1 {
			jobs[i]()
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// dumpKernel replaces the believed state with a dump of the kernel.
// Notifications queued before it are read and dropped: the dump
// supersedes them.
func (r *Reconciler) dumpKernel(why dumpReason) error {
	if r.events != nil {
		_, _ = r.events.DrainEvents(func(uint16, []byte) { r.metrics.events.Inc() })
	}
	start := r.clock.Now()
	partial, err := r.believed.load(r.k, r.own)
	if err != nil {
		if partial {
			// Until a dump succeeds only full passes may run.
			r.loaded = false
		}
		var de *dumpError
		if errors.As(err, &de) {
			r.metrics.errors[de.kind][opDump].Inc()
		}
		return err
	}
	r.metrics.dumps[why].Inc()
	r.metrics.dumpDuration.Observe(r.clock.Now().Sub(start).Seconds())
	r.loaded, r.dumpDue, r.lastDump = true, false, start
	return nil
}

// keptEntries are the kernel entries of subnets whose lease exists but
// cannot be used (an unreadable value, a malformed BackendData) and for
// which no valid peer is known: their route, the neighbour of the subnet's
// address and the FDB entry of that neighbour's MAC. A full pass neither
// deletes nor rewrites them, so a node restarted while a peer's lease is
// bad keeps reaching that peer as a running node does.
func (r *Reconciler) keptEntries() keptSet {
	var k keptSet
	for s := range r.skipped {
		if _, known := r.want.peers[s]; known {
			continue
		}
		if k.route == nil {
			k = keptSet{route: map[netip.Prefix]bool{}, neigh: map[addr16]bool{}, fdb: map[[6]byte]bool{}}
		}
		k.route[s] = true
		k.neigh[addr16Of(s.Addr())] = true
		if n, ok := r.believed.neigh[addr16Of(s.Addr())]; ok && n.mac != ([6]byte{}) {
			k.fdb[n.mac] = true
		}
	}
	return k
}

// keptSet holds the keys keptEntries protects; nil maps read as empty.
type keptSet struct {
	route map[netip.Prefix]bool
	neigh map[addr16]bool
	fdb   map[[6]byte]bool
}

// incrementalPass writes the dirty keys against the believed state:
// deletes (route, FDB, neighbour), then adds (neighbour, FDB, nexthop,
// route), then nexthop deletes. A nexthop goes last because the kernel
// deletes every route still using it: after a mode switch the routes
// have been replaced off it by then.
//
// A pass with many dirty keys (a burst of events, a mode switch, all
// peers removed) sends its writes in batches like a full pass; each
// table's batch is sent before the next table is written.
func (r *Reconciler) incrementalPass(st *passStats) {
	peak := r.want.dirty.len()
	if peak >= maxBatch {
		r.startBatching()
		defer r.stopBatching()
	}
	r.route.syncDirtyDeletes(r, st)
	r.fdb.syncDirtyDeletes(r, st)
	r.neigh.syncDirtyDeletes(r, st)
	r.neigh.syncDirty(r, st)
	r.fdb.syncDirty(r, st)
	r.nexthop.syncDirtyAdds(r, st)
	r.route.syncDirty(r, st)
	r.nexthop.syncDirty(r, st)
	r.neigh.dirty.reset(peak)
	r.fdb.dirty.reset(peak)
	r.nexthop.dirty.reset(peak)
	r.route.dirty.reset(peak)
}

// ensureDevice checks that our device still has the index we program,
// and recreates or adopts it otherwise (believed state is re-read right
// after, so every entry is rewritten on a new device).
func (r *Reconciler) ensureDevice(ctx context.Context) error {
	before := r.own.link
	err := r.ensureDeviceIndex(ctx)
	if r.own.link != before && before != 0 {
		r.markDump(dumpDevice)
	}
	return err
}

func (r *Reconciler) ensureDeviceIndex(ctx context.Context) error {
	if r.own.link != 0 {
		if l, err := r.k.LinkByIndex(r.own.link); err == nil && l.Attrs().Name == r.opts.LinkName {
			return nil
		}
	}
	l, err := r.k.LinkByName(r.opts.LinkName)
	missing := linkMissing(err)
	if err != nil && !missing {
		return fmt.Errorf("look up device %s: %w", r.opts.LinkName, err)
	}
	idx := 0
	if err == nil {
		idx = l.Attrs().Index
	}
	if idx != 0 && idx == r.own.link {
		return nil
	}
	if r.own.link == 0 && idx != 0 {
		r.own.link = idx
		return nil
	}
	switch {
	case r.opts.OnDeviceMissing != nil:
		newIdx, err := r.opts.OnDeviceMissing(ctx)
		if err != nil {
			return fmt.Errorf("device %s (index %d) is gone; recreate it: %w", r.opts.LinkName, r.own.link, err)
		}
		idx = newIdx
	case missing:
		return fmt.Errorf("device %s is missing", r.opts.LinkName)
	}
	r.log.Warn("device reappeared; reprogramming every entry", "device", r.opts.LinkName,
		"old_index", r.own.link, "new_index", idx)
	r.own.link = idx
	return nil
}

func linkMissing(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// syncState is the edge-triggered "in sync" / "out of sync" state.
type syncState uint8

const (
	syncUnknown syncState = iota
	syncIn
	syncOut
)

func (r *Reconciler) inSync() bool {
	return r.fullErr == nil && r.failingLen() == 0 && r.want.dirty.len() == 0
}

// failingLen counts the entries whose last write failed.
func (r *Reconciler) failingLen() int {
	return len(r.neigh.failing) + len(r.fdb.failing) + len(r.route.failing) + len(r.nexthop.failing)
}

func (r *Reconciler) afterPass(st *passStats, err error, start time.Time, took time.Duration) {
	kind := passIncremental
	if st.full {
		kind = passFull
	}
	r.metrics.passes[kind].Inc()
	r.metrics.passDuration.Observe(took.Seconds())
	r.schedule(st, err)
	r.logPass(st, err, took)
	r.setSyncState(r.inSync(), st, err)
	r.board.setPass(start, took, st.full, firstNonNil(err, st.firstErr))
	r.metrics.peers.Set(float64(len(r.want.peers)))
	r.metrics.kernelEntries[kindNeigh].Set(float64(len(r.believed.neigh)))
	r.metrics.kernelEntries[kindFDB].Set(float64(len(r.believed.fdb)))
	r.metrics.kernelEntries[kindRoute].Set(float64(len(r.believed.route)))
	r.metrics.kernelEntries[kindNexthop].Set(float64(len(r.believed.nexthop)))
}

// schedule sets the next full pass: the jittered resync after a clean full
// pass, an exponential backoff after any failure (the full pass re-reads
// the kernel and retries every failed entry).
func (r *Reconciler) schedule(st *passStats, err error) {
	now := r.clock.Now()
	switch {
	case err != nil || st.failed > 0:
		r.markDump(dumpFailure)
		r.failStreak++
		retry := now.Add(r.backoff())
		if st.full || retry.Before(r.nextFull) {
			r.nextFull = retry
		}
	case st.full:
		// A clean full pass leaves nothing failing.
		r.failStreak = 0
		r.nextFull = now.Add(jitter(r.opts.ResyncInterval))
	}
}

func (r *Reconciler) backoff() time.Duration {
	d := r.opts.RetryMin
	for i := 1; i < r.failStreak && d < r.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, r.opts.RetryMax)
}

// jitter spreads d by ±10% so that many nodes do not resync in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func (r *Reconciler) logPass(st *passStats, err error, took time.Duration) {
	if err != nil {
		r.log.Warn("sync pass failed; will retry", "error", err, "retry_in", r.nextFull.Sub(r.clock.Now()).Round(time.Millisecond))
	}
	if st.failed > 0 {
		r.log.Warn("sync writes failed; will retry", "failed", st.failed, "first_error", st.firstErr,
			"retry_in", r.nextFull.Sub(r.clock.Now()).Round(time.Millisecond))
	}
	adds, dels, drift := st.writes()
	if adds+dels == 0 {
		return
	}
	level := slog.LevelDebug
	if st.full || adds+dels > 3*maxPeerLines || drift > 0 {
		level = slog.LevelInfo
	}
	r.log.Log(context.Background(), level, "programmed kernel entries", "pass", passKindName(st.full),
		"written", adds, "deleted", dels, "drift_repaired", drift, "peers", len(r.want.peers),
		"peers_programmed", r.programmed, "took", took.Round(time.Microsecond))
}

func (r *Reconciler) setSyncState(in bool, st *passStats, err error) {
	if !r.haveSnapshot {
		return // early passes: in sync means nothing before the snapshot
	}
	next := syncOut
	if in {
		next = syncIn
	}
	if next != r.syncState {
		if in {
			r.log.Info("in sync", "peers", len(r.want.peers), "neighbours", len(r.believed.neigh),
				"fdb", len(r.believed.fdb), "routes", len(r.believed.route))
		} else {
			r.log.Warn("out of sync", "failing", r.failingLen(), "error", firstNonNil(err, st.firstErr))
		}
		r.syncState = next
	}
	if in {
		r.metrics.inSync.Set(1)
		r.everInSync = true
	} else {
		r.metrics.inSync.Set(0)
	}
}

func firstNonNil(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
