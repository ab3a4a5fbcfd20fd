package nftrules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/resync"
	"github.com/overlayd/overlayd/internal/rulemetrics"
	"github.com/overlayd/overlayd/subnet"
)

// DefaultResync is flanneld's default --iptables-resync.
const DefaultResync = 5 * time.Second

// Options configures a Manager. Prefixes are masked.
type Options struct {
	Kernel Kernel
	// Network is the cluster network, PodSubnet this node's lease subnet,
	// both of one family, which chooses the tables: flannel-ipv4 and
	// overlayd-ipv4, or flannel-ipv6 and overlayd-ipv6 (one Manager per
	// family).
	Network, PodSubnet netip.Prefix
	// Masquerade (--ip-masq) manages flannel-ipvN postrtg.
	Masquerade bool
	// ForwardRules (--iptables-forward-rules) manages flannel-ipvN forward.
	ForwardRules bool
	// FullyRandomDisabled (--ip-masq-fully-random-disable) leaves
	// fully-random off.
	FullyRandomDisabled bool
	// VXLANNoTrack, when set, is the VXLAN device's bind address and the
	// peers' VXLAN port: overlayd-ipvN vxlan-notrack keeps the outer
	// packets out of conntrack and NAT. Its family may differ from
	// Network's (the underlay's family is not the pods').
	VXLANNoTrack netip.AddrPort
	// Resync is the check interval of Run (--iptables-resync); 0 means 5s.
	Resync time.Duration
	Logger *slog.Logger // nil: discard
	// Clock times Run's checks and stamps Status; nil: the real clock.
	Clock subnet.Clock
	// Registerer exports the iptables mode's overlayd_iptables_* metrics
	// (docs/metrics.md); nil: not exported.
	Registerer prometheus.Registerer
}

// Status is what the last check found.
type Status = resync.Status

// Manager keeps the masquerade and forward chains (and the notrack chain)
// in place.
type Manager struct {
	kernel  Kernel
	opts    Options
	tables  []TableSpec
	resync  time.Duration
	log     *slog.Logger
	clock   subnet.Clock
	metrics *rulemetrics.Rules

	mu sync.Mutex // serialises checks

	status resync.Board // read by /status without waiting for a check
}

// NewManager validates o and prepares the tables; it changes nothing.
func NewManager(o Options) (*Manager, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	metrics, err := rulemetrics.NewRules(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("nftables manager: %w", err)
	}
	return &Manager{kernel: o.Kernel, opts: o, tables: o.tables(), resync: o.Resync, log: o.Logger, clock: o.Clock, metrics: metrics}, nil
}

func (o *Options) normalize() error {
	if o.Kernel == nil {
		return errors.New("nftables manager: Options.Kernel is nil")
	}
	if o.Masquerade || o.ForwardRules {
		if !o.Network.IsValid() || o.Network.Addr().Is4In6() {
			return fmt.Errorf("nftables manager: Options.Network %q is not a prefix", o.Network)
		}
		o.Network = o.Network.Masked()
	}
	if o.Masquerade {
		if !o.PodSubnet.IsValid() || o.PodSubnet.Addr().Is4() != o.Network.Addr().Is4() {
			return fmt.Errorf("nftables manager: Options.PodSubnet %q is not a prefix of Options.Network's family", o.PodSubnet)
		}
		o.PodSubnet = o.PodSubnet.Masked()
		if o.PodSubnet.Bits() < o.Network.Bits() || !o.Network.Contains(o.PodSubnet.Addr()) {
			return fmt.Errorf("nftables manager: Options.PodSubnet %s is not inside Options.Network %s", o.PodSubnet, o.Network)
		}
	}
	if o.VXLANNoTrack.IsValid() && o.VXLANNoTrack.Addr().Is4In6() {
		return fmt.Errorf("nftables manager: Options.VXLANNoTrack %s is an IPv4-mapped address", o.VXLANNoTrack)
	}
	var err error
	if o.Resync, err = resync.Interval("nftables manager: Options.Resync", o.Resync, DefaultResync); err != nil {
		return err
	}
	o.Logger, o.Clock = resync.Defaults(o.Logger, o.Clock)
	return nil
}

// tables lists what o asks for: flannel-ipv4 is ours alone (Exclusive: a
// chain we no longer want goes), overlayd-ipv4 is shared with the peer
// filter, so only the notrack chain is touched there.
func (o *Options) tables() []TableSpec {
	var out []TableSpec
	if o.Masquerade || o.ForwardRules {
		f := familyOf(o.Network.Addr())
		t := TableSpec{Ref: f.ref(f.flannelTable), Exclusive: true}
		if o.Masquerade {
			t.Chains = append(t.Chains, ChainSpec{Name: MasqChain, Base: natPostrouting, Rules: MasqRules(o.Network, o.PodSubnet, !o.FullyRandomDisabled)})
		}
		if o.ForwardRules {
			t.Chains = append(t.Chains, ChainSpec{Name: ForwardChain, Base: filterForward, Rules: ForwardRules(o.Network)})
		}
		out = append(out, t)
	}
	if o.VXLANNoTrack.IsValid() {
		f := familyOf(o.VXLANNoTrack.Addr())
		out = append(out, TableSpec{Ref: f.ref(f.overlaydTable), Chains: []ChainSpec{
			{Name: NoTrackChain, Base: rawOutput, Rules: NoTrackRules(o.VXLANNoTrack)},
		}})
	}
	return out
}

// Ensure reads every managed table and repairs what is not in place, all
// repairs in one transaction. Nothing in place costs reads only. A kernel
// that rejects fully-random masquerade gets plain masquerade from then on.
func (m *Manager) Ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.ensureOnce()
	if err != nil && m.opts.Masquerade && !m.opts.FullyRandomDisabled && isInvalid(err) {
		m.log.Warn("the kernel rejected the rules; trying masquerade without fully-random", "err", err)
		m.opts.FullyRandomDisabled = true
		m.tables = m.opts.tables()
		if err = m.ensureOnce(); err != nil {
			m.opts.FullyRandomDisabled = false
			m.tables = m.opts.tables()
		}
	}
	return err
}

// isInvalid reports whether the kernel refused an expression it does not
// know (EINVAL, EOPNOTSUPP).
func isInvalid(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)
}

func (m *Manager) ensureOnce() error {
	m.metrics.Resyncs.Inc()
	var ops []Op
	var repaired [][2]string // table, chain or set
	var err error
	for _, t := range m.tables {
		have, rerr := m.kernel.Table(t.Family, t.Table)
		if rerr != nil {
			err = fmt.Errorf("read table %s: %w", t.Table, rerr)
			break
		}
		o, names := plan(t, have)
		ops = append(ops, o...)
		for _, n := range names {
			repaired = append(repaired, [2]string{t.Table, n})
		}
	}
	if err == nil && len(ops) > 0 {
		err = m.kernel.Commit(ops)
	}
	if err != nil {
		repaired = nil
		m.metrics.Errors.Inc()
	}
	for _, r := range repaired {
		m.metrics.Repairs.WithLabelValues(r[0], r[1]).Inc()
		m.log.Info("nftables chain repaired", "table", r[0], "chain", r[1])
	}
	m.status.Record(m.clock.Now(), err, len(repaired))
	return err
}

// Run calls Ensure now and every Resync until ctx ends, then returns nil.
// Failures are logged when they start, change or end.
func (m *Manager) Run(ctx context.Context) error {
	return resync.Loop(ctx, m.clock, m.resync, m.Ensure, resync.RulesLogging(m.log, "nftables", m.resync))
}

// Status returns what the last check found.
func (m *Manager) Status() Status { return m.status.Status() }
