package iptables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/resync"
	"github.com/overlayd/overlayd/internal/rulemetrics"
	"github.com/overlayd/overlayd/subnet"
)

// DefaultResync is flanneld's default --iptables-resync.
const DefaultResync = 5 * time.Second

// Options configures a Manager. Prefixes are masked (10.244.99.1/24 is
// 10.244.99.0/24), as iptables prints them.
type Options struct {
	Runner Runner
	// Network is the cluster network, PodSubnet this node's lease subnet.
	Network, PodSubnet netip.Prefix
	// Masquerade (--ip-masq) manages nat FLANNEL-POSTRTG.
	Masquerade bool
	// ForwardRules (--iptables-forward-rules) manages filter FLANNEL-FWD.
	ForwardRules bool
	// RandomFullyDisabled (--ip-masq-fully-random-disable) leaves
	// --random-fully off even when iptables supports it.
	RandomFullyDisabled bool
	// VXLANNoTrack, when set, is the VXLAN device's bind address and the
	// peers' VXLAN port: raw OVERLAYD-NOTRACK keeps the outer packets out
	// of conntrack and NAT (notrack.go).
	VXLANNoTrack netip.AddrPort
	// PrevNetwork and PrevSubnet come from the previous subnet file (zero when
	// none): flannel v0.11's rules for them are removed too.
	PrevNetwork, PrevSubnet netip.Prefix
	// Resync is the check interval of Run (--iptables-resync); 0 means 5s.
	Resync     time.Duration
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics not exported
	// Clock times Run's checks and stamps Status; nil: the real clock.
	Clock subnet.Clock
}

// Status is what the last check found.
type Status = resync.Status

// ruleSet is one of our chains, what it must hold, the built-in chain that
// jumps to it, and the rules that must not stay in that built-in chain.
type ruleSet struct {
	table, parent, chain string
	jump                 Rule
	rules                []Rule
	legacy               []Rule
}

// Manager keeps the masquerade and forward rules in place.
type Manager struct {
	runner  Runner
	sets    []ruleSet
	resync  time.Duration
	log     *slog.Logger
	metrics *rulemetrics.Rules
	clock   subnet.Clock

	// mu serialises checks; legacyDone is set once a check succeeded, after
	// which flanneld v0.11's unlabelled rules are no longer looked for
	// (docs/compatibility.md, "iptables": rules of a previous setup are
	// removed at start; later, an identical rule is the administrator's).
	mu         sync.Mutex
	legacyDone bool

	status resync.Board // read by /status without waiting for iptables
}

// NewManager validates o and prepares the rule sets; it changes nothing.
func NewManager(o Options) (*Manager, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	metrics, err := rulemetrics.NewRules(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("iptables manager: %w", err)
	}
	return &Manager{
		runner:  o.Runner,
		sets:    o.ruleSets(),
		resync:  o.Resync,
		log:     o.Logger,
		metrics: metrics,
		clock:   o.Clock,
	}, nil
}

// Ensure checks every managed chain once and repairs what is not in place.
// It returns what failed (all failures, joined); the rest is still repaired.
func (m *Manager) Ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.metrics.Resyncs.Inc()
	var errs []error
	repaired := 0
	for _, s := range m.sets {
		n, err := m.ensureSet(s)
		repaired += n
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if err != nil {
		m.metrics.Errors.Inc()
	} else {
		m.legacyDone = true
	}
	m.status.Record(m.clock.Now(), err, repaired)
	return err
}

// Run calls Ensure now and every Resync until ctx ends, then returns nil.
// Failures are logged when they start, change or end, and retried on the
// next tick.
func (m *Manager) Run(ctx context.Context) error {
	return resync.Loop(ctx, m.clock, m.resync, m.Ensure, resync.RulesLogging(m.log, toolName(m.runner.Proto()), m.resync))
}

// Status returns what the last check found.
func (m *Manager) Status() Status { return m.status.Status() }

// ensureSet syncs our chain first, then the jump to it, so the jump never
// leads to a chain that is missing or half built. It returns the number of
// chains it had to repair.
func (m *Manager) ensureSet(s ruleSet) (int, error) {
	writes, err := syncChain(m.runner, s.table, s.chain, s.rules)
	repaired := m.noteRepair(s.table, s.chain, writes)
	if err != nil {
		return repaired, err
	}
	legacy := s.legacy
	if m.legacyDone {
		legacy = nil
	}
	writes, err = syncParent(m.runner, s.table, s.parent, s.jump, legacy)
	return repaired + m.noteRepair(s.table, s.parent, writes), err
}

func (m *Manager) noteRepair(table, chain string, writes int) int {
	if writes == 0 {
		return 0
	}
	m.metrics.Repairs.WithLabelValues(table, chain).Inc()
	m.log.Info(toolName(m.runner.Proto())+" chain repaired", "table", table, "chain", chain, "writes", writes)
	return 1
}
