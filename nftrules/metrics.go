package nftrules

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The nftables mode exports the iptables mode's metric names
// (docs/metrics.md), so dashboards and alerts work in either mode; the
// table label is the nftables table.
type managerMetrics struct {
	resyncs prometheus.Counter
	repairs *prometheus.CounterVec
	errors  prometheus.Counter
}

func newManagerMetrics(reg prometheus.Registerer) (*managerMetrics, error) {
	var m managerMetrics
	var errs [3]error
	m.resyncs, errs[0] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_resyncs_total",
		Help: "Checks of the iptables rules.",
	}))
	m.repairs, errs[1] = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "overlayd_iptables_repairs_total",
		Help: "Checks that found a chain's rules not in place and rewrote them.",
	}, []string{"table", "chain"}))
	m.errors, errs[2] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_errors_total",
		Help: "Checks of the iptables rules that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}

type peerMetrics struct {
	peers   prometheus.Gauge
	updates prometheus.Counter
	repairs prometheus.Counter
	errors  prometheus.Counter
}

func newPeerMetrics(reg prometheus.Registerer) (*peerMetrics, error) {
	var m peerMetrics
	var errs [4]error
	m.peers, errs[0] = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overlayd_vxlan_peer_filter_peers", Help: "Addresses allowed to send VXLAN packets.",
	}))
	m.updates, errs[1] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_updates_total", Help: "Incremental updates (elements added or deleted) of the nftables peer set.",
	}))
	m.repairs, errs[2] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_repairs_total", Help: "Rewrites of the peer filter chain or its jump.",
	}))
	m.errors, errs[3] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_errors_total", Help: "Peer filter updates or checks that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}

// register adds c to reg (nil: not exported). A collector already
// registered under the same name and type is shared.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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
