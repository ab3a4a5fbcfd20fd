package iptables

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/rulemetrics"
)

// peerMetrics are the peer filter metrics of both modes plus the ipset
// swaps of this one.
type peerMetrics struct {
	*rulemetrics.PeerFilter
	swaps prometheus.Counter
}

func newPeerMetrics(reg prometheus.Registerer) (*peerMetrics, error) {
	common, err := rulemetrics.NewPeerFilter(reg)
	swaps, swapsErr := rulemetrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_swaps_total", Help: "Replacements of the peer set.",
	}))
	return &peerMetrics{PeerFilter: common, swaps: swaps}, errors.Join(err, swapsErr)
}
