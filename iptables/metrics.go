package iptables

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type managerMetrics struct {
	resyncs prometheus.Counter
	repairs *prometheus.CounterVec
	errors  prometheus.Counter
}

func newManagerMetrics(reg prometheus.Registerer) (*managerMetrics, error) {
	var m managerMetrics
	var err1, err2, err3 error
	m.resyncs, err1 = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_resyncs_total",
		Help: "Checks of the iptables rules.",
	}))
	m.repairs, err2 = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "overlayd_iptables_repairs_total",
		Help: "Checks that found a chain's rules not in place and rewrote them.",
	}, []string{"table", "chain"}))
	m.errors, err3 = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_iptables_errors_total",
		Help: "Checks of the iptables rules that failed.",
	}))
	return &m, errors.Join(err1, err2, err3)
}

// register adds c to reg (nil: not exported). A collector already registered
// under the same name, by another Manager (the IPv6 one), is shared.
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

type peerMetrics struct {
	peers   prometheus.Gauge
	swaps   prometheus.Counter
	repairs prometheus.Counter
	errors  prometheus.Counter
}

func newPeerMetrics(reg prometheus.Registerer) (*peerMetrics, error) {
	var m peerMetrics
	var errs [4]error
	m.peers, errs[0] = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "overlayd_vxlan_peer_filter_peers", Help: "Addresses allowed to send VXLAN packets.",
	}))
	m.swaps, errs[1] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_swaps_total", Help: "Replacements of the peer set.",
	}))
	m.repairs, errs[2] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_repairs_total", Help: "Rewrites of the peer filter chain or its jump.",
	}))
	m.errors, errs[3] = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_errors_total", Help: "Peer filter updates or checks that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}
