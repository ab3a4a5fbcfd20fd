package nftrules

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/rulemetrics"
)

// The nftables mode exports the iptables mode's metric names
// (docs/metrics.md), so dashboards and alerts work in either mode; the
// table label is the nftables table.

// peerMetrics are the peer filter metrics of both modes plus the
// incremental set updates of this one.
type peerMetrics struct {
	*rulemetrics.PeerFilter
	updates prometheus.Counter
}

func newPeerMetrics(reg prometheus.Registerer) (*peerMetrics, error) {
	common, err := rulemetrics.NewPeerFilter(reg)
	updates, updatesErr := rulemetrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "overlayd_vxlan_peer_filter_set_updates_total", Help: "Incremental updates (elements added or deleted) of the nftables peer set.",
	}))
	return &peerMetrics{PeerFilter: common, updates: updates}, errors.Join(err, updatesErr)
}
