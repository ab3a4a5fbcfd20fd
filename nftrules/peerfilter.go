package nftrules

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
	"github.com/overlayd/overlayd/internal/vxlanport"
	"github.com/overlayd/overlayd/subnet"
)

// DefaultVXLANPort is the kernel's VXLAN port, flannel's default.
const DefaultVXLANPort = vxlanport.Default

// PeerFilterOptions configures a PeerFilter.
type PeerFilterOptions struct {
	Kernel Kernel
	Port   int // VXLAN UDP port; 0 means 8472
	// ExtraPorts are more UDP ports only peers may reach, filtered alike
	// (overlayd's health probe port).
	ExtraPorts []int
	// IPv6 filters IPv6 VXLAN in overlayd-ipv6 (one filter per family);
	// unset, IPv4 in overlayd-ipv4.
	IPv6   bool
	Logger *slog.Logger
	// Clock times Run's checks; nil: the real clock.
	Clock subnet.Clock
	// Registerer exports the overlayd_vxlan_peer_filter_* metrics; nil: not
	// exported.
	Registerer prometheus.Registerer
}

// PeerFilter keeps the VXLAN peer filter in place: the set vxlan-peers of
// the peers' addresses and the chain vxlan-peer-filter (input hook) that
// drops UDP to the VXLAN port from anyone else, in table overlayd-ipv4
// (overlayd-ipv6 for IPv6).
// Nothing is installed before the first SetPeers: an empty set would drop
// every peer's traffic. Peers coming and going are added to and deleted from
// the set, one transaction per change; Ensure reads the kernel back and
// repairs.
type PeerFilter struct {
	kernel  Kernel
	fam     family
	spec    TableSpec // without the elements
	log     *slog.Logger
	clock   subnet.Clock
	metrics *rulemetrics.PeerFilter

	mu      sync.Mutex
	peers   []netip.Addr // wanted: sorted, unique
	applied []netip.Addr // the set's content after our last write
	inPlace bool         // applied is known to be the kernel's content
	ready   bool         // SetPeers has been called
}

// NewPeerFilter validates o; it changes nothing.
func NewPeerFilter(o PeerFilterOptions) (*PeerFilter, error) {
	if o.Kernel == nil {
		return nil, errors.New("peer filter: PeerFilterOptions.Kernel is nil")
	}
	ports, err := vxlanport.Filtered(o.Port, o.ExtraPorts)
	if err != nil {
		return nil, fmt.Errorf("peer filter: %w", err)
	}
	var rules []Rule
	for _, p := range ports {
		rules = append(rules, PeerFilterRules(p, o.IPv6)...)
	}
	o.Logger, o.Clock = resync.Defaults(o.Logger, o.Clock)
	metrics, err := rulemetrics.NewPeerFilter(o.Registerer, prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_updates_total", Help: "Incremental updates (elements added or deleted) of the nftables peer set.",
	})
	if err != nil {
		return nil, fmt.Errorf("peer filter: %w", err)
	}
	fam := ipv4
	if o.IPv6 {
		fam = ipv6
	}
	spec := TableSpec{Ref: fam.ref(fam.overlaydTable), Chains: []ChainSpec{
		{Name: PeerChain, Base: filterInput, Rules: rules},
	}}
	return &PeerFilter{kernel: o.Kernel, fam: fam, spec: spec, log: o.Logger, clock: o.Clock, metrics: metrics}, nil
}

// SetPeers replaces the allowed sources with addrs (the peers' underlay
// addresses as seen on the wire). Once the filter is in place, only the
// difference is written; addresses of the other family are skipped with a
// warning.
func (f *PeerFilter) SetPeers(addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = f.normalize(addrs)
	f.ready = true
	f.metrics.Peers.Set(float64(len(f.peers)))
	if !f.inPlace {
		return f.ensureLocked()
	}
	add, del := diffAddrs(f.peers, f.applied)
	ops := elementOps(f.spec.Ref, PeerSet, add, del)
	if len(ops) == 0 {
		return nil
	}
	if err := f.kernel.Commit(ops); err != nil {
		// The set was changed behind our back: read it and repair.
		f.log.Info("vxlan peer set update failed; reading it back", "err", err)
		f.inPlace = false
		return f.ensureLocked()
	}
	f.metrics.SetChanges.Inc()
	f.applied = f.peers
	return nil
}

// Ensure reads the set and the chain back and repairs what is not in place.
// Before the first SetPeers it does nothing.
func (f *PeerFilter) Ensure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return nil
	}
	return f.ensureLocked()
}

func (f *PeerFilter) ensureLocked() error {
	want := f.spec
	want.Sets = []SetSpec{{Name: PeerSet, Elements: f.peers}}
	have, err := f.kernel.Table(want.Family, want.Table)
	if err != nil {
		f.inPlace = false
		f.metrics.Errors.Inc()
		return fmt.Errorf("peer filter: read table %s: %w", want.Table, err)
	}
	ops, repaired := plan(want, have)
	if err := f.kernel.Commit(ops); err != nil {
		f.inPlace = false
		f.metrics.Errors.Inc()
		return fmt.Errorf("peer filter: write table %s (%d peers): %w", want.Table, len(f.peers), err)
	}
	if len(repaired) > 0 && f.inPlace {
		f.metrics.Repairs.Inc()
		f.log.Info("vxlan peer filter repaired", "table", want.Table, "repaired", repaired)
	}
	f.applied, f.inPlace = f.peers, true
	return nil
}

// Run calls Ensure now and every interval until ctx ends, then returns nil.
func (f *PeerFilter) Run(ctx context.Context, every time.Duration) error {
	return resync.PeerFilterLoop(ctx, f.clock, f.log, every, f.Ensure)
}

func (f *PeerFilter) normalize(addrs []netip.Addr) []netip.Addr {
	keep := make([]netip.Addr, 0, len(addrs))
	skipped := 0
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || familyOf(a).nft != f.fam.nft {
			skipped++
			continue
		}
		keep = append(keep, a)
	}
	if skipped > 0 {
		f.log.Warn("vxlan peer filter: skipping addresses of the other family", "table", f.spec.Table, "count", skipped)
	}
	return sortedUnique(keep)
}
