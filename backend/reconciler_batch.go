package backend

import "fmt"

// startBatching makes the add cases of the sync functions queue their
// requests when the Kernel can send them in batches (full passes only).
func (r *Reconciler) startBatching() {
	if _, ok := r.k.(batchSender); ok {
		r.scratch.batch = &r.scratch.batchBuf
	}
}

// stopBatching sends what is queued and returns to single writes.
func (r *Reconciler) stopBatching(st *passStats) {
	r.flushBatch(st)
	r.scratch.batch = nil
}

// flushFullBatch sends the batch once it holds maxBatch requests.
func (r *Reconciler) flushFullBatch(st *passStats) {
	if r.scratch.batch.len() >= maxBatch {
		r.flushBatch(st)
	}
}

// flushBatch sends the queued adds and records every outcome exactly as
// the single-write path does (EEXIST tolerated, errors per entry).
func (r *Reconciler) flushBatch(st *passStats) {
	b := r.scratch.batch
	if b == nil || b.len() == 0 {
		return
	}
	r.k.(batchSender).sendBatch(b)
	for i := range b.entries {
		e := &b.entries[i]
		switch e.kind {
		case kindNeigh:
			r.neighAdded(e.ip, r.want.neigh[e.ip], e.present, st, e.err)
		case kindFDB:
			want := r.want.fdb[e.mac]
			err := r.wrote(st, kindFDB, opAdd, r.fdbDrift(st, e.mac), e.err)
			if err != nil {
				err = fmt.Errorf("replace fdb %s dst %s dev %s: %w", macString(e.mac), want.dst, r.opts.LinkName, err)
			}
			r.fdbAdded(e.mac, want, e.present, st, err)
		case kindRoute:
			want, owner := r.want.route(e.route.dst)
			r.routeAdded(e.route, e.link, want, owner, e.present, st, e.err)
		}
	}
	b.reset()
}
