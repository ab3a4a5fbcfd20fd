// Package rulemetrics holds the metrics the iptables and the nftables
// rule modes both export, under the same names (docs/metrics.md), so
// dashboards and alerts work in either mode.
package rulemetrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds c to reg (nil: not exported). A collector already
// registered under the same name and type, by another manager (the IPv6
// one), is shared.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}

// Rules are the metrics of a rule manager's checks.
type Rules struct {
	Resyncs prometheus.Counter
	Repairs *prometheus.CounterVec // labels table, chain
	Errors  prometheus.Counter
}

// NewRules registers the rule check metrics with reg (nil: not exported).
func NewRules(reg prometheus.Registerer) (*Rules, error) {
	var m Rules
	var errs [3]error
	m.Resyncs, errs[0] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_resyncs_total",
		Help: "Checks of the iptables rules.",
	}))
	m.Repairs, errs[1] = Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "overlayd_iptables_repairs_total",
		Help: "Checks that found a chain's rules not in place and rewrote them.",
	}, []string{"table", "chain"}))
	m.Errors, errs[2] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_errors_total",
		Help: "Checks of the iptables rules that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}

// PeerFilter are the metrics of the VXLAN peer filter. SetChanges counts
// the changes of the peer set, which each mode makes its own way (ipset
// swaps, nftables element updates) and names accordingly.
type PeerFilter struct {
	Peers      prometheus.Gauge
	SetChanges prometheus.Counter
	Repairs    prometheus.Counter
	Errors     prometheus.Counter
}

// NewPeerFilter registers the peer filter metrics with reg (nil: not
// exported), SetChanges under setChanges.
func NewPeerFilter(reg prometheus.Registerer, setChanges prometheus.CounterOpts) (*PeerFilter, error) {
	var m PeerFilter
	var errs [4]error
	m.Peers, errs[0] = Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overlayd_vxlan_peer_filter_peers", Help: "Addresses allowed to send VXLAN packets.",
	}))
	m.SetChanges, errs[1] = Register(reg, prometheus.NewCounter(setChanges))
	m.Repairs, errs[2] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_repairs_total", Help: "Rewrites of the peer filter chain or its jump.",
	}))
	m.Errors, errs[3] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_errors_total", Help: "Peer filter updates or checks that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}
