package subnet

import (
	"github.com/overlayd/overlayd/internal/metricreg"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the lease manager's Prometheus metrics. They always exist;
// they are registered only when a Registerer is given.
type metrics struct {
	leaseExpiration prometheus.Gauge
	leaseExpired    prometheus.Gauge
	renewals        *prometheus.CounterVec
	watchRestarts   *prometheus.CounterVec
	peers           prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		leaseExpiration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "overlayd_subnet_lease_expiration_timestamp_seconds",
			Help: "When this node's subnet lease expires (Unix time); 0 for a reservation (no TTL).",
		}),
		leaseExpired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "overlayd_subnet_lease_expired",
			Help: "1 while this node's lease has expired on the local clock without a successful renewal (another node may be given the subnet); 0 otherwise.",
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overlayd_subnet_lease_renewals_total",
			Help: "Lease renewal attempts by result (ok, error, recreated).",
		}, []string{"result"}),
		watchRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overlayd_subnet_watch_restarts_total",
			Help: "Lease watch restarts (each followed by a re-list) by reason (history_lost, error).",
		}, []string{"reason"}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "overlayd_subnet_peers",
			Help: "Peer leases currently known (own lease excluded).",
		}),
	}
	if err := metricreg.All(reg, "subnet manager", m.leaseExpiration, m.leaseExpired, m.renewals, m.watchRestarts, m.peers); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) setExpiration(l Lease) {
	if l.IsReservation() {
		m.leaseExpiration.Set(0)
		return
	}
	m.leaseExpiration.Set(float64(l.Expiration.UnixNano()) / 1e9)
}
