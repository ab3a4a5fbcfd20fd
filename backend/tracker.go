package backend

import (
	"github.com/overlayd/overlayd/backend/internal/nl"
)

// tracker is one kernel table (neighbours, FDB, routes) as the reconciler
// keeps it, in the manner of a delta tracker: a desired view (a pure
// function of the peer set), a believed view (what the reconciler believes
// the kernel holds: loaded from a dump, then kept current by its own
// successful writes), the keys whose two views may differ (dirty: pending
// updates and pending deletes), and the keys whose last write failed.
//
// A full pass ("resync") reloads the believed view from a dump and walks
// every desired key, then every believed key that is not desired; an
// incremental pass walks only the dirty keys, deletes first. The
// kind-specific part (what matches, how to write and delete) is in ops.
type tracker[K comparable, W, B any] struct {
	kind     entryKind
	desired  desiredView[K, W]
	believed map[K]B
	dirty    keySet[K]
	// failing holds the keys whose last write failed, with the error;
	// prevFailing those of the pass before (a write that fixes them is
	// not drift).
	failing, prevFailing map[K]error
	ops                  tableOps[K, W, B]
	// queued are the keys whose adds wait in the reconciler's batch, in
	// batch order, with whether the key was believed present.
	queued []queuedKey[K]
}

type queuedKey[K comparable] struct {
	key     K
	present bool
	del     bool // a delete of the believed entry
}

// desiredView is the desired side of a table: the wanted entry of a key
// with the peer that wants it, and every wanted entry. A full pass walks
// entries rather than keys and get: one map read per entry, not two
// (at 100,000 peers the pass is bound by map reads that miss the cache).
type desiredView[K comparable, W any] interface {
	get(k K) (want W, owner *peer, wanted bool)
	entries(yield func(k K, want W, owner *peer) bool)
}

// tableOps is what differs between the tables. Writes are accounted by
// the ops with wrote (deletes) or by the tracker (the add itself).
type tableOps[K comparable, W, B any] interface {
	// matches: the believed entry already is the wanted one.
	matches(b B, w W) bool
	// written is the believed entry after w was written.
	written(w W) B
	// dirtyKey is the key inputs mark dirty for k (routes of any metric
	// are marked by their destination).
	dirtyKey(k K) K
	// batchable: an add of w over b can go into a batch as one request.
	batchable(b B, present bool) bool
	queue(batch *nl.Batch, k K, w W)
	// prepare runs the deletes a replace over b needs first; the error
	// is wrapped.
	prepare(st *passStats, k K, w W, b B, present, drift bool) error
	// write replaces the entry with one request; the error is raw.
	write(k K, w W) error
	// addError wraps a failed add.
	addError(k K, w W, err error) error
	// remove deletes the believed entry; the error is wrapped.
	remove(st *passStats, k K, b B, drift bool) error
	// queueDel queues the delete of b as one request if it can be one.
	queueDel(batch *nl.Batch, k K, b B) bool
	// delError wraps a failed delete.
	delError(k K, b B, err error) error
}

func newTracker[K comparable, W, B any](kind entryKind, d desiredView[K, W], believed map[K]B, ops tableOps[K, W, B]) *tracker[K, W, B] {
	return &tracker[K, W, B]{kind: kind, desired: d, believed: believed, dirty: newKeySet[K](),
		failing: map[K]error{}, prevFailing: map[K]error{}, ops: ops}
}

// drift: a write in a full pass repairs drift unless an input or an
// earlier failure already explained it.
func (t *tracker[K, W, B]) drift(st *passStats, k K) bool {
	return st.full && !t.dirty.has(t.ops.dirtyKey(k)) && t.prevFailing[k] == nil
}

// sync makes the kernel's entry for k what is desired, or queues the add
// when r is batching.
func (t *tracker[K, W, B]) sync(r *Reconciler, k K, st *passStats) {
	want, owner, wanted := t.desired.get(k)
	t.syncTo(r, k, want, owner, wanted, st)
}

// syncTo is sync with the desired entry already read.
func (t *tracker[K, W, B]) syncTo(r *Reconciler, k K, want W, owner *peer, wanted bool, st *passStats) {
	have, present := t.believed[k]
	switch {
	case wanted && present && t.ops.matches(have, want):
		st.kept[t.kind]++
		delete(t.failing, k)
		r.settle(t.kind, owner, nil)
	case wanted && r.batch != nil && t.ops.batchable(have, present):
		t.ops.queue(r.batch, k, want)
		t.queued = append(t.queued, queuedKey[K]{key: k, present: present})
		if r.batch.Len() >= maxBatch {
			t.flush(r, st)
		}
	case wanted:
		err := t.ops.prepare(st, k, want, have, present, t.drift(st, k))
		if err == nil {
			err = t.accountAdd(r, st, k, want, t.ops.write(k, want))
		}
		t.added(r, st, k, want, owner, present, err)
	case present && r.batch != nil && t.ops.queueDel(r.batch, k, have):
		t.queued = append(t.queued, queuedKey[K]{key: k, present: true, del: true})
		if r.batch.Len() >= maxBatch {
			t.flush(r, st)
		}
	case present:
		if err := t.ops.remove(st, k, have, t.drift(st, k)); err != nil {
			r.failed(st, err)
			t.failing[k] = err
			return
		}
		delete(t.believed, k)
		delete(t.failing, k)
	default:
		delete(t.failing, k)
	}
}

// accountAdd counts an add that returned err and wraps what remains.
func (t *tracker[K, W, B]) accountAdd(r *Reconciler, st *passStats, k K, w W, err error) error {
	if err = r.wrote(st, t.kind, opAdd, t.drift(st, k), err); err != nil {
		return t.ops.addError(k, w, err)
	}
	return nil
}

// added records the outcome of an add (err already accounted, wrapped).
func (t *tracker[K, W, B]) added(r *Reconciler, st *passStats, k K, w W, owner *peer, present bool, err error) {
	if err != nil {
		r.failed(st, err)
		t.failing[k] = err
	} else {
		t.believed[k] = t.ops.written(w)
		delete(t.failing, k)
	}
	if err == nil || present {
		st.kept[t.kind]++
	}
	r.settle(t.kind, owner, err)
}

// flush sends the queued adds and records every outcome exactly as the
// single-write path does (EEXIST tolerated, errors per entry).
func (t *tracker[K, W, B]) flush(r *Reconciler, st *passStats) {
	if r.batch == nil || len(t.queued) == 0 {
		return
	}
	r.k.(batchSender).sendBatch(r.batch)
	for i, q := range t.queued {
		if q.del {
			t.deleted(r, st, q.key, r.batch.Err(i))
			continue
		}
		want, owner, _ := t.desired.get(q.key)
		err := t.accountAdd(r, st, q.key, want, r.batch.Err(i))
		t.added(r, st, q.key, want, owner, q.present, err)
	}
	clear(t.queued)
	t.queued = t.queued[:0]
	r.batch.Reset()
	// Read the batch's echoes before they pile up (events.go).
	r.drainEvents()
}

// deleted records the outcome of a batched delete exactly as the single
// path does (ENOENT and ESRCH tolerated).
func (t *tracker[K, W, B]) deleted(r *Reconciler, st *passStats, k K, err error) {
	if err = r.wrote(st, t.kind, opDel, t.drift(st, k), err); err != nil {
		err = t.ops.delError(k, t.believed[k], err)
		r.failed(st, err)
		t.failing[k] = err
		return
	}
	delete(t.believed, k)
	delete(t.failing, k)
}

// syncDesired syncs every desired key (a full pass), then sends what is
// queued, so that each table is in the kernel before the next is written.
func (t *tracker[K, W, B]) syncDesired(r *Reconciler, st *passStats) {
	t.desired.entries(func(k K, want W, owner *peer) bool {
		t.syncTo(r, k, want, owner, true, st)
		return true
	})
	t.flush(r, st)
}

// tableDiff is what the read-only half of a full pass found in one table:
// how many desired entries the believed state holds as wanted, with their
// peers settled, and the other desired keys (all of them, by the sync of
// every desired key, when there are more than maxDiffKeys).
type tableDiff[K comparable] struct {
	kept int
	todo []K
	all  bool
}

// maxDiffKeys bounds the keys a diff collects: past it, the pass syncs
// every desired key as it reads it (a first sync), rather than holding a
// copy of them all.
const maxDiffKeys = 4096

// diff compares every desired entry with the believed one and changes
// nothing, so that the trackers can be compared at once on several cores
// (the loop waits; nothing else writes the desired or believed state or
// the peers' pending marks). At 100,000 peers a full pass with nothing to
// repair is this comparison, and it is bound by map reads that miss the
// cache, not by the processor: on two cores it takes half the time.
//
// The believed entries are read in runs of readRun, each run in one tight
// loop, so that the processor overlaps their cache misses.
func (t *tracker[K, W, B]) diff() tableDiff[K] {
	var d tableDiff[K]
	var run [readRun]struct {
		k     K
		want  W
		owner *peer
	}
	n := 0
	check := func() {
		for i := range n {
			e := &run[i]
			have, present := t.believed[e.k]
			switch {
			case present && t.ops.matches(have, e.want) && settled(t.kind, e.owner):
				d.kept++
			case len(d.todo) == maxDiffKeys:
				d.all = true
			default:
				d.todo = append(d.todo, e.k)
			}
		}
		n = 0
	}
	t.desired.entries(func(k K, want W, owner *peer) bool {
		run[n].k, run[n].want, run[n].owner = k, want, owner
		if n++; n == readRun {
			check()
		}
		return !d.all
	})
	check()
	return d
}

// readRun is how many believed entries diff reads together.
const readRun = 32

// syncDiff is the writing half: it syncs the keys d found (or every
// desired key) and sends what is queued.
func (t *tracker[K, W, B]) syncDiff(r *Reconciler, d tableDiff[K], st *passStats) {
	if d.all {
		t.syncDesired(r, st)
		return
	}
	st.kept[t.kind] += d.kept
	for _, k := range d.todo {
		t.sync(r, k, st)
	}
	t.flush(r, st)
}

// syncStale deletes the believed entries nobody wants, except those keep
// protects. The scan runs only when the kernel holds more entries than
// the wanted ones found there.
func (t *tracker[K, W, B]) syncStale(r *Reconciler, st *passStats, keep func(K) bool) {
	if len(t.believed) <= st.kept[t.kind] {
		return
	}
	for k := range t.believed {
		if _, _, wanted := t.desired.get(k); !wanted && !keep(k) {
			t.sync(r, k, st)
		}
	}
	t.flush(r, st)
}

// syncDirtyDeletes runs the pending deletes among the dirty keys and
// takes them out of the dirty set.
func (t *tracker[K, W, B]) syncDirtyDeletes(r *Reconciler, st *passStats) {
	for k := range t.dirty {
		if _, _, wanted := t.desired.get(k); !wanted {
			t.sync(r, k, st)
			t.dirty.remove(k)
		}
	}
	t.flush(r, st)
}

// syncDirtyAdds runs the pending updates among the dirty keys, leaving
// the pending deletes for a later syncDirty.
func (t *tracker[K, W, B]) syncDirtyAdds(r *Reconciler, st *passStats) {
	for k := range t.dirty {
		if _, _, wanted := t.desired.get(k); wanted {
			t.sync(r, k, st)
			t.dirty.remove(k)
		}
	}
	t.flush(r, st)
}

// syncDirty runs the pending updates (the dirty keys left).
func (t *tracker[K, W, B]) syncDirty(r *Reconciler, st *passStats) {
	for k := range t.dirty {
		t.sync(r, k, st)
	}
	t.flush(r, st)
}

// startFull swaps in a fresh failing set; the old one explains writes.
func (t *tracker[K, W, B]) startFull() {
	t.prevFailing, t.failing = t.failing, t.prevFailing
	clear(t.failing)
}

// endFull forgets the previous failures and the dirty keys.
func (t *tracker[K, W, B]) endFull(peak int) {
	clear(t.prevFailing)
	t.dirty.reset(peak)
}
