package subnettest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Op names a Registry operation, for fault injection and call counts.
type Op int

// The Registry operations.
const (
	OpGetConfig Op = iota
	OpList
	OpCreate
	OpUpdate
	OpDelete
	OpWatch
)

// Nower is the part of a clock the registry needs.
type Nower interface{ Now() time.Time }

// Registry is an in-memory subnet.Registry that behaves like etcd: every
// change gets a revision, creates are atomic, leases with a TTL expire on
// the injected clock (checked on every call and by Expire), watches replay
// history from a revision, and Compact loses history. Values go through
// the v0.28 JSON encoding, so what readers get is what etcd would return.
type Registry struct {
	mu           sync.Mutex
	clock        Nower
	prefix       string
	config       []byte
	leases       map[subnet.LeaseID]entry
	raw          map[string]rawEntry // malformed entries by key name
	rev          int64
	history      []record
	compactRev   int64
	watchers     map[*watcher]struct{}
	wake         chan struct{} // closed and replaced on every change
	held         bool
	faults       map[Op][]error
	calls        map[Op]int
	beforeCreate func(subnet.LeaseID)
}

type entry struct {
	attrs subnet.LeaseAttrs
	exp   time.Time
	// created is the revision that created the key (subnet.Lease.Created).
	created int64
}

type rawEntry struct {
	value  string
	reason error
}

type record struct {
	rev     int64
	event   *subnet.Event
	skipped *subnet.SkippedKey
}

type watcher struct {
	pos  int64
	kill chan error
}

// NewRegistry returns an empty registry (no config) on clock, under
// subnet.DefaultPrefix. A nil clock means real time.
func NewRegistry(clock Nower) *Registry {
	if clock == nil {
		clock = subnet.RealClock()
	}
	return &Registry{
		clock: clock, prefix: subnet.DefaultPrefix,
		leases: map[subnet.LeaseID]entry{}, raw: map[string]rawEntry{},
		watchers: map[*watcher]struct{}{}, wake: make(chan struct{}),
		faults: map[Op][]error{}, calls: map[Op]int{},
	}
}

// --- test controls ---

// SetConfig stores <prefix>/config; nil deletes it.
func (r *Registry) SetConfig(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = slices.Clone(data)
}

// FailNext makes the next len(errs) calls of op return errs in order
// (a nil entry lets that call through).
func (r *Registry) FailNext(op Op, errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[op] = append(r.faults[op], errs...)
}

// Calls returns how many times op was called.
func (r *Registry) Calls(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[op]
}

// SetBeforeCreate installs a hook run at the start of CreateLease, outside
// the lock, so it may call PutLease to make the create lose a race.
func (r *Registry) SetBeforeCreate(fn func(id subnet.LeaseID)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.beforeCreate = fn
}

// PutLease writes a lease as another node (or an admin) would: created or
// overwritten, with l.Expiration as is (zero: a reservation).
func (r *Registry) PutLease(l subnet.Lease) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.putLocked(l.ID(), l.Attrs, l.Expiration)
}

// PutRaw writes a raw value under <prefix>/subnets/<name>. A valid name and
// value make a reservation; anything else is stored as a malformed entry,
// reported in ListLeases and WatchLeases as Skipped (a valid lease under
// that name disappears from the list, as it would in etcd).
func (r *Registry) PutRaw(name, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := subnet.ParseLeaseIDName(name)
	keyOK := err == nil
	var attrs subnet.LeaseAttrs
	if keyOK {
		attrs, err = subnet.UnmarshalLeaseAttrs([]byte(value))
	}
	if err == nil {
		delete(r.raw, name)
		r.leases[p] = entry{attrs: attrs}
		r.recordEvent(subnet.EventAdded, subnet.Lease{Subnet: p.Subnet, IPv6Subnet: p.IPv6Subnet, Attrs: attrs})
		return
	}
	if keyOK {
		delete(r.leases, p)
	}
	r.raw[name] = rawEntry{value: value, reason: err}
	r.recordSkipped(subnet.SkippedKey{Key: r.prefixKey(name), Reason: err})
}

// DeleteRaw removes a malformed entry written by PutRaw.
func (r *Registry) DeleteRaw(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.raw[name]; !ok {
		return
	}
	delete(r.raw, name)
	r.recordSkipped(subnet.SkippedKey{Key: r.prefixKey(name), Reason: fmt.Errorf("malformed entry deleted")})
}

// Lease returns the stored lease whose IPv4 subnet is p.
func (r *Registry) Lease(p netip.Prefix) (subnet.Lease, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	for id, e := range r.leases {
		if id.Subnet == p {
			return e.lease(id), true
		}
	}
	return subnet.Lease{Subnet: p}, false
}

// LeaseByID returns the stored lease with key id.
func (r *Registry) LeaseByID(id subnet.LeaseID) (subnet.Lease, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	e, ok := r.leases[id]
	return e.lease(id), ok
}

func (e entry) lease(id subnet.LeaseID) subnet.Lease {
	return subnet.Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet, Attrs: e.attrs, Expiration: e.exp, Created: e.created}
}

// Leases returns every valid lease, sorted by subnet.
func (r *Registry) Leases() []subnet.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
	return r.sortedLocked()
}

// Revision returns the current revision.
func (r *Registry) Revision() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev
}

// Expire deletes the leases whose TTL ran out on the clock (as every
// call does first), emitting removal events to watchers.
func (r *Registry) Expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked()
}

// Compact drops all history up to the current revision, like etcd's
// compaction of a watcher that fell behind: watches positioned before it
// end with subnet.ErrHistoryLost, as do new watches from before it.
func (r *Registry) Compact() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.compactRev = r.rev
	r.history = nil
	for w := range r.watchers {
		if w.pos < r.compactRev {
			w.killWith(fmt.Errorf("fake registry: compacted at revision %d: %w", r.compactRev, subnet.ErrHistoryLost))
		}
	}
}

// BreakWatches ends every active WatchLeases with err.
func (r *Registry) BreakWatches(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.watchers {
		w.killWith(err)
	}
}

// HoldWatches pauses (true) or resumes (false) delivery to watchers, so
// that changes can pile up behind them (then Compact loses them).
func (r *Registry) HoldWatches(hold bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = hold
	r.notifyLocked()
}

// Watchers returns how many WatchLeases calls are running.
func (r *Registry) Watchers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watchers)
}

// --- subnet.Registry ---

// GetNetworkConfig implements subnet.Registry.
func (r *Registry) GetNetworkConfig(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enterLocked(ctx, OpGetConfig); err != nil {
		return nil, err
	}
	if r.config == nil {
		return nil, fmt.Errorf("fake registry: %s: %w", subnet.ConfigKey(r.prefix), subnet.ErrConfigNotFound)
	}
	return slices.Clone(r.config), nil
}

// ListLeases implements subnet.Registry.
func (r *Registry) ListLeases(ctx context.Context) (subnet.LeaseList, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enterLocked(ctx, OpList); err != nil {
		return subnet.LeaseList{}, err
	}
	list := subnet.LeaseList{Leases: r.sortedLocked(), Revision: r.rev}
	names := make([]string, 0, len(r.raw))
	for name := range r.raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		list.Skipped = append(list.Skipped, subnet.SkippedKey{Key: r.prefixKey(name), Reason: r.raw[name].reason})
	}
	return list, nil
}

// CreateLease implements subnet.Registry. A ttl <= 0 creates a reservation.
func (r *Registry) CreateLease(ctx context.Context, p subnet.LeaseID, attrs subnet.LeaseAttrs, ttl time.Duration) (time.Time, error) {
	r.mu.Lock()
	hook := r.beforeCreate
	r.mu.Unlock()
	if hook != nil {
		hook(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enterLocked(ctx, OpCreate); err != nil {
		return time.Time{}, err
	}
	_, exists := r.leases[p]
	if _, malformed := r.raw[p.KeyName()]; exists || malformed {
		return time.Time{}, fmt.Errorf("fake registry: create %s: %w", p, subnet.ErrLeaseExists)
	}
	var exp time.Time
	if ttl > 0 {
		exp = r.clock.Now().Add(ttl)
	}
	if err := r.putLocked(p, attrs, exp); err != nil {
		return time.Time{}, err
	}
	return exp, nil
}

// UpdateLease implements subnet.Registry.
func (r *Registry) UpdateLease(ctx context.Context, l subnet.Lease, ttl time.Duration) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enterLocked(ctx, OpUpdate); err != nil {
		return time.Time{}, err
	}
	old, ok := r.leases[l.ID()]
	if !ok {
		return time.Time{}, fmt.Errorf("fake registry: update %s: %w", l.ID(), subnet.ErrLeaseNotFound)
	}
	var exp time.Time
	if !old.exp.IsZero() && ttl > 0 {
		exp = r.clock.Now().Add(ttl)
	}
	if err := r.putLocked(l.ID(), l.Attrs, exp); err != nil {
		return time.Time{}, err
	}
	return exp, nil
}

// DeleteLease implements subnet.Registry.
func (r *Registry) DeleteLease(ctx context.Context, p subnet.LeaseID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enterLocked(ctx, OpDelete); err != nil {
		return err
	}
	if _, ok := r.leases[p]; !ok {
		return fmt.Errorf("fake registry: delete %s: %w", p, subnet.ErrLeaseNotFound)
	}
	r.deleteLocked(p)
	return nil
}

// WatchLeases implements subnet.Registry. It returns ctx.Err() when ctx
// ends, and subnet.ErrHistoryLost (wrapped) when fromRevision was compacted.
func (r *Registry) WatchLeases(ctx context.Context, fromRevision int64, out chan<- subnet.WatchBatch) error {
	r.mu.Lock()
	if err := r.enterLocked(ctx, OpWatch); err != nil {
		r.mu.Unlock()
		return err
	}
	if fromRevision < r.compactRev {
		r.mu.Unlock()
		return fmt.Errorf("fake registry: watch from revision %d: compacted at %d: %w", fromRevision+1, r.compactRev, subnet.ErrHistoryLost)
	}
	w := &watcher{pos: fromRevision, kill: make(chan error, 1)}
	r.watchers[w] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.watchers, w)
		r.mu.Unlock()
	}()
	for {
		r.mu.Lock()
		batch, ok := r.pendingLocked(w.pos)
		wake := r.wake
		r.mu.Unlock()
		if !ok {
			select {
			case <-wake:
				continue
			case err := <-w.kill:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case out <- batch:
			r.mu.Lock()
			w.pos = batch.Revision
			r.mu.Unlock()
		case err := <-w.kill:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// --- internals (r.mu held) ---

// enterLocked counts the call, expires leases, and returns an injected
// fault or a done context's error.
func (r *Registry) enterLocked(ctx context.Context, op Op) error {
	r.calls[op]++
	if err := ctx.Err(); err != nil {
		return err
	}
	if q := r.faults[op]; len(q) > 0 {
		err := q[0]
		r.faults[op] = q[1:]
		if err != nil {
			return err
		}
	}
	r.expireLocked()
	return nil
}

func (r *Registry) putLocked(p subnet.LeaseID, attrs subnet.LeaseAttrs, exp time.Time) error {
	if _, err := subnet.ParseLeaseIDName(p.KeyName()); err != nil || !p.IsValid() {
		return fmt.Errorf("fake registry: put %s: not a valid lease key: %v", p, err)
	}
	data, err := subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
	if err != nil {
		return fmt.Errorf("fake registry: put %s: %w", p, err)
	}
	stored, err := subnet.UnmarshalLeaseAttrs(data)
	if err != nil {
		return fmt.Errorf("fake registry: put %s: re-read %s: %w", p, data, err)
	}
	created := r.rev + 1 // the revision recordEvent gives this put
	if old, ok := r.leases[p]; ok {
		created = old.created
	}
	r.leases[p] = entry{attrs: stored, exp: exp, created: created}
	r.recordEvent(subnet.EventAdded, r.leases[p].lease(p))
	return nil
}

func (r *Registry) deleteLocked(p subnet.LeaseID) {
	e := r.leases[p]
	delete(r.leases, p)
	r.recordEvent(subnet.EventRemoved, e.lease(p))
}

func (r *Registry) expireLocked() {
	now := r.clock.Now()
	var gone []subnet.LeaseID
	for p, e := range r.leases {
		if !e.exp.IsZero() && !e.exp.After(now) {
			gone = append(gone, p)
		}
	}
	slices.SortFunc(gone, compareID)
	for _, p := range gone {
		r.deleteLocked(p)
	}
}

func (r *Registry) recordEvent(t subnet.EventType, l subnet.Lease) {
	r.rev++
	r.history = append(r.history, record{rev: r.rev, event: &subnet.Event{Type: t, Lease: l}})
	r.notifyLocked()
}

func (r *Registry) recordSkipped(s subnet.SkippedKey) {
	r.rev++
	r.history = append(r.history, record{rev: r.rev, skipped: &s})
	r.notifyLocked()
}

func (r *Registry) notifyLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// pendingLocked collects everything after pos into one batch.
func (r *Registry) pendingLocked(pos int64) (subnet.WatchBatch, bool) {
	if r.held {
		return subnet.WatchBatch{}, false
	}
	i, _ := slices.BinarySearchFunc(r.history, pos+1, func(rec record, rev int64) int {
		return int(rec.rev - rev)
	})
	if i >= len(r.history) {
		return subnet.WatchBatch{}, false
	}
	var b subnet.WatchBatch
	for _, rec := range r.history[i:] {
		if rec.event != nil {
			b.Events = append(b.Events, *rec.event)
		}
		if rec.skipped != nil {
			b.Skipped = append(b.Skipped, *rec.skipped)
		}
		b.Revision = rec.rev
	}
	return b, true
}

func (r *Registry) sortedLocked() []subnet.Lease {
	out := make([]subnet.Lease, 0, len(r.leases))
	for p, e := range r.leases {
		out = append(out, e.lease(p))
	}
	slices.SortFunc(out, func(a, b subnet.Lease) int { return compareID(a.ID(), b.ID()) })
	return out
}

// compareID orders lease keys by IPv4 subnet, then IPv6 subnet.
func compareID(a, b subnet.LeaseID) int {
	for _, pair := range [][2]netip.Prefix{{a.Subnet, b.Subnet}, {a.IPv6Subnet, b.IPv6Subnet}} {
		if c := pair[0].Addr().Compare(pair[1].Addr()); c != 0 {
			return c
		}
		if c := pair[0].Bits() - pair[1].Bits(); c != 0 {
			return c
		}
	}
	return 0
}

func (r *Registry) prefixKey(name string) string { return subnet.SubnetsDir(r.prefix) + name }

func (w *watcher) killWith(err error) {
	select {
	case w.kill <- err:
	default:
	}
}
