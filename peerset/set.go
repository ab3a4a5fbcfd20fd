package peerset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/subnet"
)

// Options configure a Set. Network and Peers are required.
type Options struct {
	// Network is the cluster network: a peer's subnet must lie inside it.
	Network netip.Prefix
	// OwnSubnet is our lease's subnet: a lease for it is not a peer.
	OwnSubnet netip.Prefix
	// Peers receives the decoded peers (the reconciler).
	Peers Sink
	// Candidates receives the same-site candidates; nil: none.
	Candidates CandidateSink
	// Addrs receives the peer filter's source addresses; nil: none.
	Addrs AddrSink
	// SubnetLen is the length every peer subnet must have (the config's
	// SubnetLen; in kube mode our podCIDR's); 0: not checked.
	SubnetLen int
	// LocalAddrs are this node's addresses (bind and advertised): no
	// peer's PublicIP may be one of them.
	LocalAddrs []netip.Addr
	// Clock stamps refusals; nil: the real clock.
	Clock  subnet.Clock
	Logger *slog.Logger
	// Registerer receives overlayd_peer_leases_refused; nil: none.
	Registerer prometheus.Registerer
}

func (o *Options) withDefaults() error {
	switch {
	case !o.Network.IsValid() || o.Network != o.Network.Masked():
		return fmt.Errorf("peer set options: Network %s is not a masked prefix", o.Network)
	case o.Peers == nil:
		return errors.New("peer set options: Peers is nil")
	}
	if o.Clock == nil {
		o.Clock = subnet.RealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Set owns the peer set. ReplacePeers, UpdatePeers (subnet.PeerSink) and
// SetVerdict may be called from any goroutine and never block: they queue.
// Run (or Step) is the one goroutine that applies the queue and calls the
// consumers.
type Set struct {
	o     Options
	log   *slog.Logger
	rules rules

	inMu    sync.Mutex
	pending []input
	kick    chan struct{}

	// Owned by the goroutine that steps.
	peers           map[netip.Prefix]*entry
	verdicts        map[netip.Prefix]Verdict
	addrs           addrCounts
	index           overlapIndex
	overlapRefused  map[netip.Prefix]struct{}
	refused         *prometheus.GaugeVec
	refusalsChanged bool
	haveSnapshot    bool

	statusMu    sync.Mutex
	refusedList []Refused
}

// entry is one subnet that has a lease. It is kept small: at 100,000
// peers every byte here is 100 kB of the daemon's heap.
type entry struct {
	sub netip.Prefix
	// created orders overlapping leases (subnet.Lease.Created).
	created int64
	// good is the subnet's last good state, valid when hasGood.
	good    decoded
	hasGood bool
	// indexed: the subnet counts in the overlap index (a current peer's
	// place, good or kept).
	indexed bool
	// viaPrivate: the underlay destination is good's private address,
	// verified same-site; otherwise it is good's PublicIP (see dst).
	viaPrivate bool
	refusal    *refusal
	// raw is the latest lease, kept only while peers can overlap one
	// another (SubnetLen unchecked), to admit it again when an older
	// overlapping lease goes.
	raw *subnet.Lease
}

// dst is the underlay destination derived from the good state and the
// verdict (invalid without a good state).
func (e *entry) dst() netip.Addr {
	if e.viaPrivate {
		return e.good.privateIP()
	}
	return e.good.publicIP
}

// keep is why the latest lease cannot be used while the subnet keeps its
// last good state; "" when it can be used or is withdrawn.
func (e *entry) keep() string {
	if e.refusal != nil && !e.refusal.withdraw {
		return e.refusal.Error()
	}
	return ""
}

// withdrawn: the subnet is refused; the reconciler has no peer for it.
func (e *entry) withdrawn() bool { return e.refusal != nil && e.refusal.withdraw }

// input is one queued call.
type input struct {
	replace    []subnet.Lease
	hasReplace bool
	events     []subnet.Event
	// early: leases of a first list still being read (AddEarlyPeers).
	early   []subnet.Lease
	verdict *Verdict
}

var _ subnet.EarlyPeerSink = (*Set)(nil)

// New validates the options; nothing is sent before the first snapshot.
func New(o Options) (*Set, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	refused, err := newRefusedMetric(o.Registerer)
	if err != nil {
		return nil, err
	}
	local := make(map[netip.Addr]bool, len(o.LocalAddrs))
	for _, a := range o.LocalAddrs {
		if a.IsValid() {
			local[a.Unmap()] = true
		}
	}
	return &Set{
		o: o, log: o.Logger,
		rules: rules{network: o.Network, ownSubnet: o.OwnSubnet, subnetLen: o.SubnetLen, local: local},
		kick:  make(chan struct{}, 1), peers: map[netip.Prefix]*entry{},
		verdicts: map[netip.Prefix]Verdict{}, addrs: addrCounts{n: map[netip.Addr]int{}},
		index: overlapIndex{}, overlapRefused: map[netip.Prefix]struct{}{}, refused: refused,
	}, nil
}

// ReplacePeers queues the lease manager's complete peer set. It takes the
// slice, not a copy (at 10,000 peers a copy is megabytes): the caller
// must not change it afterwards (both lease managers build a fresh one
// for every snapshot).
func (s *Set) ReplacePeers(leases []subnet.Lease) {
	s.push(input{replace: leases, hasReplace: true})
}

// AddEarlyPeers queues leases of a first list still being read
// (subnet.EarlyPeerSink). They go through the lease policy like any lease,
// and to the peer sink early when it is an EarlySink; the snapshot that
// follows supersedes them. Ignored after the first snapshot.
func (s *Set) AddEarlyPeers(leases []subnet.Lease) {
	if len(leases) == 0 {
		return
	}
	s.push(input{early: slices.Clone(leases)})
}

// UpdatePeers queues the lease manager's changes.
func (s *Set) UpdatePeers(events []subnet.Event) {
	if len(events) == 0 {
		return
	}
	s.push(input{events: append([]subnet.Event(nil), events...)})
}

// SetVerdict queues a same-site verdict.
func (s *Set) SetVerdict(v Verdict) { s.push(input{verdict: &v}) }

func (s *Set) push(in input) {
	s.inMu.Lock()
	s.pending = append(s.pending, in)
	s.inMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run applies queued inputs until ctx ends; it returns nil then.
func (s *Set) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		s.Step()
	}
}

// Step applies everything queued and tells the consumers what changed.
// Run calls it; tests call it to drive the Set without a goroutine.
func (s *Set) Step() {
	s.inMu.Lock()
	in := s.pending
	s.pending = nil
	s.inMu.Unlock()
	var out outputs
	for i := range in {
		s.apply(&in[i], &out)
	}
	s.flush(&out)
}

func (s *Set) apply(in *input, out *outputs) {
	switch {
	case in.hasReplace:
		s.applyReplace(in.replace, out)
		s.haveSnapshot = true
	case in.verdict != nil:
		s.applyVerdict(*in.verdict, out)
	case in.early != nil:
		if !s.haveSnapshot {
			for i := range in.early {
				s.applyLease(&in.early[i], out)
			}
			out.early = true
		}
	case s.haveSnapshot:
		// Events before the first snapshot are superseded by it.
		for i := range in.events {
			s.applyEvent(&in.events[i], out)
		}
	}
}
