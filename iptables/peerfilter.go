package iptables

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/resync"
	"github.com/overlayd/overlayd/internal/rulemetrics"
	"github.com/overlayd/overlayd/internal/vxlanport"
	"github.com/overlayd/overlayd/subnet"
)

// The VXLAN peer filter: the kernel's VXLAN socket accepts packets from
// anyone, so on a public network anyone could inject packets into the pod
// network. The filter accepts UDP to the VXLAN port only from peers.
const (
	PeerSetName      = "overlayd-vxlan-peers" // IPv4; the IPv6 set adds "6"
	PeerChain        = "OVERLAYD-VXLAN"
	DefaultVXLANPort = vxlanport.Default
	peerComment      = "overlayd vxlan peer filter"
	inputChain       = "INPUT"
	minSetMaxElem    = 65536 // ipset's default maxelem
)

// PeerFilterOptions configures a PeerFilter.
type PeerFilterOptions struct {
	Runner Runner      // its family decides the set's family
	IPSet  IPSetRunner // nil: NewIPSetRunner()
	Port   int         // VXLAN UDP port; 0 means 8472
	// ExtraPorts are more UDP ports only peers may reach, filtered alike
	// (overlayd's health probe port).
	ExtraPorts []int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Clock times Run's checks; nil: the real clock.
	Clock subnet.Clock
}

// PeerFilter keeps the peer set, the OVERLAYD-VXLAN chain and INPUT's jump to
// it in place. Nothing is installed before the first SetPeers: an empty set
// would drop every peer's traffic.
type PeerFilter struct {
	runner  Runner
	ipset   IPSetRunner
	ports   []uint16 // the VXLAN port, then the extra ones
	set     string
	tmpSet  string
	family  string // ipset's "inet" / "inet6"
	log     *slog.Logger
	metrics *rulemetrics.PeerFilter
	clock   subnet.Clock

	mu    sync.Mutex
	peers []netip.Addr // sorted, unique
	ready bool         // SetPeers has been called
}

// NewPeerFilter validates o; it changes nothing.
func NewPeerFilter(o PeerFilterOptions) (*PeerFilter, error) {
	if o.Runner == nil {
		return nil, fmt.Errorf("peer filter: PeerFilterOptions.Runner is nil")
	}
	ports, err := vxlanport.Filtered(o.Port, o.ExtraPorts)
	if err != nil {
		return nil, fmt.Errorf("peer filter: %w", err)
	}
	if o.IPSet == nil {
		o.IPSet = NewIPSetRunner()
	}
	o.Logger, o.Clock = resync.Defaults(o.Logger, o.Clock)
	metrics, err := rulemetrics.NewPeerFilter(o.Registerer, prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_swaps_total", Help: "Replacements of the peer set.",
	})
	if err != nil {
		return nil, fmt.Errorf("peer filter: %w", err)
	}
	set, family := peerSet(o.Runner.Proto())
	return &PeerFilter{
		runner: o.Runner, ipset: o.IPSet, ports: ports,
		set: set, tmpSet: set + "-tmp", family: family,
		log: o.Logger, metrics: metrics, clock: o.Clock,
	}, nil
}

// SetPeers replaces the allowed sources with addrs (the peers' underlay
// addresses as seen on the wire) and brings the filter in place. Addresses of
// the other family are skipped with a warning.
func (f *PeerFilter) SetPeers(addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = f.normalizePeers(addrs)
	f.ready = true
	f.metrics.Peers.Set(float64(len(f.peers)))
	return f.ensureLocked()
}

// Ensure checks the set, the chain and the jump and repairs what is not in
// place. Before the first SetPeers it does nothing.
func (f *PeerFilter) Ensure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return nil
	}
	return f.ensureLocked()
}

// Run calls Ensure now and every interval until ctx ends, then returns nil.
func (f *PeerFilter) Run(ctx context.Context, every time.Duration) error {
	return resync.PeerFilterLoop(ctx, f.clock, f.log, every, f.Ensure)
}

// ensureLocked runs ensureAll and counts its failures.
func (f *PeerFilter) ensureLocked() error {
	err := f.ensureAll()
	if err != nil {
		f.metrics.Errors.Inc()
	}
	return err
}

// ensureAll brings the set in place before the chain that matches on it,
// and the chain before the jump to it.
func (f *PeerFilter) ensureAll() error {
	if err := f.syncSet(); err != nil {
		return err
	}
	writes, err := syncChain(f.runner, filterTable, PeerChain, peerFilterRules(f.ports, f.set))
	f.noteRepair(PeerChain, writes)
	if err != nil {
		return err
	}
	writes, err = ensureJumpFirst(f.runner, peerJump())
	f.noteRepair(inputChain, writes)
	return err
}

func (f *PeerFilter) noteRepair(chain string, writes int) {
	if writes == 0 {
		return
	}
	f.metrics.Repairs.Inc()
	f.log.Info("vxlan peer filter chain repaired", "chain", chain, "writes", writes)
}

// ensureJumpFirst inserts the jump at the top of its chain when it is
// missing: a filter placed after an ACCEPT it does not see would filter
// nothing. A jump already present stays where it is.
func ensureJumpFirst(r Runner, jump Rule) (int, error) {
	exists, err := r.Exists(jump.Table, jump.Chain, jump.Spec...)
	if err != nil {
		return 0, fmt.Errorf("check %q in %s chain %s: %w", jump.String(), jump.Table, jump.Chain, err)
	}
	if exists {
		return 0, nil
	}
	if err := r.Insert(jump.Table, jump.Chain, 1, jump.Spec...); err != nil {
		return 0, fmt.Errorf("insert %q in %s chain %s: %w", jump.String(), jump.Table, jump.Chain, err)
	}
	return 1, nil
}

func peerFilterRules(ports []uint16, set string) []Rule {
	var rules []Rule
	for _, p := range ports {
		toPort := []string{"-p", "udp", "-m", "udp", "--dport", strconv.Itoa(int(p))}
		fromPeer := slices.Concat(toPort, []string{"-m", "set", "--match-set", set, "src"})
		rules = append(rules,
			commented(filterTable, PeerChain, fromPeer, peerComment, []string{"-j", "ACCEPT"}),
			commented(filterTable, PeerChain, toPort, peerComment, []string{"-j", "DROP"}))
	}
	return rules
}

func peerJump() Rule {
	return commented(filterTable, inputChain, nil, peerComment, []string{"-j", PeerChain})
}
