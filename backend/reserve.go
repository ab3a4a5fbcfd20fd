package backend

// reserve sizes the empty maps the first snapshot of n peers fills (the
// desired state, the dirty keys and the believed state the first pass
// writes into), so that they are not grown and rehashed step by step
// while the first pass waits: at 100,000 peers growing them cost a third
// of building the desired state. Maps that already hold entries (a
// restart's dump, an earlier snapshot) are left alone.
func (r *Reconciler) reserve(n int) {
	if n < 1024 {
		return
	}
	presize(&r.want.peers, n)
	presize(&r.want.neigh, n)
	presize(&r.want.fdb, n)
	presize(&r.neigh.dirty, n)
	presize(&r.fdb.dirty, n)
	presize(&r.route.dirty, n)
	// The trackers share the believed maps: both must point at the new
	// ones.
	if presize(&r.believed.neigh, n) {
		r.neigh.believed = r.believed.neigh
	}
	if presize(&r.believed.fdb, n) {
		r.fdb.believed = r.believed.fdb
	}
	if presize(&r.believed.route, n) {
		r.route.believed = r.believed.route
	}
}

// presize replaces *m with a map sized for n entries if it is empty.
func presize[M ~map[K]V, K comparable, V any](m *M, n int) bool {
	if len(*m) != 0 {
		return false
	}
	*m = make(M, n)
	return true
}
