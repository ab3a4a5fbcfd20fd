package kube

import (
	"github.com/overlayd/overlayd/internal/metricreg"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	peers     prometheus.Gauge
	skipped   prometheus.Gauge
	patches   *prometheus.CounterVec
	apiErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "overlayd_kube_peers",
			Help: "Nodes delivered as peers (annotated kube-subnet-manager=true, valid lease, not us).",
		}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "overlayd_kube_skipped_nodes",
			Help: "Nodes annotated kube-subnet-manager=true whose lease is unusable (no podCIDR, bad public-ip or backend-data).",
		}),
		patches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overlayd_kube_node_patches_total",
			Help: "Patches of our node's status subresource, by what they set (annotations, condition).",
		}, []string{"what"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overlayd_kube_api_errors_total",
			Help: "Failed Kubernetes API requests of the kube subnet manager, by operation.",
		}, []string{"op"}),
	}
	if err := metricreg.All(reg, "kube subnet manager", m.peers, m.skipped, m.patches, m.apiErrors); err != nil {
		return nil, err
	}
	return m, nil
}
