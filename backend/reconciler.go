package backend

// Design note: the reconciler.
//
// Vocabulary: "desired" is what the peer set asks for; "believed" is what
// the reconciler believes the kernel holds (the one word for it). Each
// kernel table (neighbours, FDB, routes, and nexthop objects in nexthop
// route mode) is a tracker (tracker.go) holding both views plus the dirty
// and failing keys; tables.go says how each table matches, writes and
// deletes. Routes always go before the nexthops they leave: the kernel
// deletes the routes of a deleted nexthop, and deleting a nexthop that a
// route still uses walks the whole FIB under the rtnl lock.
//
// Why level-triggered. flannel programs the kernel per event and never
// reads it back: an entry someone deleted stays missing, an entry of a peer
// whose removal event was lost stays forever. Here inputs only change the
// desired state (a pure function of the peer set) and mark the keys they
// touch dirty; a pass then compares desired with believed state for the
// dirty keys and writes the difference. Believed state is a dump of the
// kernel (at start, on the periodic jittered resync, after write errors and
// when the device reappears) kept current by our own successful writes, so
// an event pass is O(changes) and costs no dump, and a full pass is O(N)
// and repairs any drift. A burst of events coalesces into one pass: inputs
// go to a queue and a cap-1 channel wakes the single goroutine that owns
// all state. Failures never sleep in the loop: failed keys are remembered
// and a timer with exponential backoff schedules a full pass that retries
// them; other peers' events keep flowing meanwhile.
//
// What is ours to delete (see ownership): on our VXLAN device, every
// neighbour of our family and every permanent unicast FDB entry, and main-table
// routes inside the cluster network (not to the network itself, not to our
// own subnet, not made by the kernel); with DirectRouting also such routes
// on the external link that have a gateway; every nexthop object on our
// device with an id in our reserved range (nexthop.go). Nothing on any other device
// is touched, and nothing is deleted before the first complete peer
// snapshot (ReplacePeers): a restart over a correct kernel writes nothing.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
)

// Defaults of ReconcilerOptions.
const (
	DefaultResyncInterval = 60 * time.Second
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 30 * time.Second
)

// ReconcilerOptions configure a Reconciler. Kernel, LinkName and Network
// are required; ExtLinkIndex too with DirectRouting.
type ReconcilerOptions struct {
	Kernel Kernel
	// LinkName and LinkIndex name our VXLAN device (LinkIndex 0: look it
	// up by name on the first pass).
	LinkName  string
	LinkIndex int
	// ExtLinkIndex is the external interface, used by DirectRouting routes.
	ExtLinkIndex int
	// Network is the cluster network: routes on our device (or our
	// DirectRouting routes on ExtLink) inside it are ours.
	Network netip.Prefix
	// OwnSubnet is never programmed as a peer.
	OwnSubnet     netip.Prefix
	DirectRouting bool
	// ResyncInterval is the period of full resyncs, jittered by ±10%.
	ResyncInterval time.Duration
	// DumpInterval is how often a full resync re-reads the whole kernel
	// when the Kernel reports changes (NetlinkKernel): the others diff
	// against the believed state kept current by notifications (see
	// events.go). 0: DefaultDumpInterval. Without notifications every
	// full resync dumps.
	DumpInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff after failures.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Registerer receives the overlayd_sync_* metrics; nil: none.
	Registerer prometheus.Registerer
	// Clock schedules full passes and retries and times passes; nil: the
	// real clock.
	Clock subnet.Clock
	// RouteMode is the shape of peer routes; "" is RouteModeOnlink.
	RouteMode RouteMode
	// NexthopThreshold is where RouteModeAuto switches to nexthop objects
	// (0: DefaultNexthopThreshold).
	NexthopThreshold int
	// OnDeviceMissing is called from the loop when the device is gone or
	// its index changed; it recreates the device and returns its index.
	// Nil: an index change is adopted, a missing device is an error.
	OnDeviceMissing func(ctx context.Context) (int, error)
}

func (o *ReconcilerOptions) withDefaults() error {
	switch {
	case o.Kernel == nil:
		return errors.New("reconciler options: Kernel is nil")
	case o.LinkName == "":
		return errors.New("reconciler options: LinkName is empty")
	case !o.Network.IsValid() || o.Network != o.Network.Masked():
		return fmt.Errorf("reconciler options: Network %s is not a masked prefix", o.Network)
	case o.DirectRouting && o.ExtLinkIndex <= 0:
		return fmt.Errorf("reconciler options: DirectRouting needs ExtLinkIndex, have %d", o.ExtLinkIndex)
	}
	if o.RouteMode == "" {
		o.RouteMode = RouteModeOnlink
	}
	if _, err := ParseRouteMode(string(o.RouteMode)); err != nil {
		return fmt.Errorf("reconciler options: %w", err)
	}
	if o.NexthopThreshold <= 0 {
		o.NexthopThreshold = DefaultNexthopThreshold
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.DumpInterval <= 0 {
		o.DumpInterval = DefaultDumpInterval
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = subnet.RealClock()
	}
	return nil
}

// Reconciler keeps the kernel's per-peer VXLAN entries equal to what the
// peer set asks for (peerset.Sink: the peers come decoded, with their
// underlay destination chosen). ReplacePeers, UpdatePeers, Synced and
// Status may be called from any goroutine; Run is the one goroutine that
// owns the state.
type Reconciler struct {
	opts    ReconcilerOptions
	k       Kernel
	log     *slog.Logger
	clock   subnet.Clock
	metrics *syncMetrics
	own     ownership

	inMu    sync.Mutex
	pending pendingInputs
	kick    chan struct{}
	running atomic.Bool
	synced  chan struct{}
	board   statusBoard

	// Owned by the Run goroutine.
	want     *desiredState
	believed *believedState
	// The kernel tables: neighbours, FDB, routes (see tracker).
	neigh        *neighTable
	fdb          *fdbTable
	route        *routeTable
	nexthop      *nexthopTable
	mode         routeModeState
	skipped      map[netip.Prefix]string
	directCache  map[netip.Addr]bool
	spareEvents  []peerset.Change
	haveSnapshot bool
	// early: early peers (UpdateEarlyPeers) came before the snapshot.
	early bool
	// loaded: believed state has come from a dump at least once; before,
	// only full passes run.
	loaded       bool
	nextFull     time.Time
	failStreak   int
	fullErr      error
	syncState    syncState
	everInSync   bool
	syncedClosed bool
	programmed   int
	scratch      writeScratch
	// events is the kernel's notification subscription (nil: none);
	// rearm tells watchEvents that the loop has read it.
	events EventSource
	rearm  chan struct{}
	// fullNow: a notification changed the believed state, run a full
	// pass now. dumpDue: the next full pass must dump, for dumpWhy.
	fullNow bool
	dumpDue bool
	// linkDown, extLinkDown: the last notification of our device or the
	// external link said it was down (or gone).
	linkDown, extLinkDown bool
	dumpWhy               dumpReason
	lastDump              time.Time
	// batch is non-nil while a full pass queues its adds (the Kernel is
	// a batchSender); batchBuf is its reused storage.
	batch    *nl.Batch
	batchBuf nl.Batch
}

// NewReconciler validates the options and registers the metrics.
func NewReconciler(o ReconcilerOptions) (*Reconciler, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	m, err := newSyncMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	family := unix.AF_INET
	if o.Network.Addr().Is6() {
		family = unix.AF_INET6
	}
	own := ownership{family: family, network: o.Network, ownSubnet: o.OwnSubnet, link: o.LinkIndex}
	if o.DirectRouting {
		own.extLink = o.ExtLinkIndex
	}
	r := &Reconciler{
		opts:        o,
		k:           o.Kernel,
		log:         o.Logger,
		clock:       o.Clock,
		metrics:     m,
		own:         own,
		kick:        make(chan struct{}, 1),
		rearm:       make(chan struct{}, 1),
		synced:      make(chan struct{}),
		want:        newDesiredState(o.Logger),
		believed:    newBelievedState(),
		skipped:     map[netip.Prefix]string{},
		directCache: map[netip.Addr]bool{},
	}
	r.newTables()
	if es, ok := o.Kernel.(EventSource); ok && es.Subscribed() {
		r.events = es
	}
	return r, nil
}

// pendingInputs is the queue between the callers and the loop. A snapshot
// supersedes everything queued before it.
type pendingInputs struct {
	replace    []peerset.Peer
	hasReplace bool
	events     []peerset.Change
	// early: changes of a first list still being read (UpdateEarlyPeers).
	early []peerset.Change
}

// ReplacePeers delivers the complete peer set (peerset.Sink). It never
// blocks; it keeps the slice (the peer set builds a new one each time).
func (r *Reconciler) ReplacePeers(peers []peerset.Peer) {
	r.inMu.Lock()
	r.pending.replace, r.pending.hasReplace = peers, true
	clear(r.pending.events)
	r.pending.events = r.pending.events[:0]
	r.pending.early = nil
	r.inMu.Unlock()
	r.wake()
}

// UpdatePeers delivers changes since the previous call (peerset.Sink).
// It never blocks; changes queue and coalesce into one pass.
func (r *Reconciler) UpdatePeers(events []peerset.Change) { r.enqueue(&r.pending.events, events) }

var _ peerset.EarlySink = (*Reconciler)(nil)

// UpdateEarlyPeers delivers peers of the lease manager's first list while
// it is still being read (peerset.EarlySink). Before the first snapshot
// they are programmed as they come (see earlyPass); nothing else is
// deleted until the snapshot, which supersedes them. After it they are
// ignored.
func (r *Reconciler) UpdateEarlyPeers(changes []peerset.Change) {
	r.enqueue(&r.pending.early, changes)
}

// enqueue appends changes to one of the input queues and wakes the loop.
func (r *Reconciler) enqueue(queue *[]peerset.Change, changes []peerset.Change) {
	if len(changes) == 0 {
		return
	}
	r.inMu.Lock()
	*queue = append(*queue, changes...)
	r.inMu.Unlock()
	r.wake()
}

func (r *Reconciler) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// takePending hands the queue to the loop, leaving the loop's spare event
// buffer in its place so that steady event traffic does not allocate.
func (r *Reconciler) takePending() pendingInputs {
	r.inMu.Lock()
	defer r.inMu.Unlock()
	in := r.pending
	r.pending = pendingInputs{events: r.spareEvents[:0]}
	return in
}

// Synced is closed after the first complete, error-free pass.
func (r *Reconciler) Synced() <-chan struct{} { return r.synced }

// Run owns the reconciler's state until ctx ends; it returns nil then.
// Nothing is written before the first ReplacePeers.
func (r *Reconciler) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("reconciler: Run called twice")
	}
	if r.events != nil {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go r.watchEvents(ctx, done)
		defer func() { cancel(); <-done }()
	}
	for {
		r.step(ctx)
		if r.fullNow && r.haveSnapshot && ctx.Err() == nil {
			continue // notifications during the pass asked for another
		}
		// Before the first snapshot only an input can start a pass.
		var due <-chan time.Time
		var timer subnet.Timer
		if r.haveSnapshot {
			timer = r.clock.NewTimer(r.nextFull.Sub(r.clock.Now()))
			due = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// step applies queued inputs and runs the pass that is due, if any.
func (r *Reconciler) step(ctx context.Context) {
	r.drainEvents()
	r.applyPending()
	if !r.haveSnapshot {
		r.earlyPass(ctx)
		return
	}
	r.decideRouteMode()
	switch {
	case r.fullNow || !r.clock.Now().Before(r.nextFull):
		r.fullNow = false
		r.runPass(ctx, true)
	case r.loaded && r.want.dirty.len() > 0:
		r.runPass(ctx, false)
	}
	r.flushStatus()
	// Closed only after the status is published, so that a caller woken
	// by Synced reads a Status that shows the sync.
	if r.everInSync && !r.syncedClosed {
		close(r.synced)
		r.syncedClosed = true
	}
}
