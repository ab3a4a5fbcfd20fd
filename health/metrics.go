package health

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics: no per-peer label, so the series count does not grow with the
// cluster; per-peer detail is in /status.
type metrics struct {
	rtt         *prometheus.HistogramVec
	probes      *prometheus.CounterVec
	unreachable *prometheus.GaugeVec
	sent        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "overlayd_peer_rtt_seconds", Help: "Round trip of answered health probes to peers, by path (overlay: through VXLAN; underlay: to the peer's address).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}, []string{"path"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overlayd_peer_probes_total", Help: "Health probes to peers by path and result (ok, lost: no answer to any of the tries).",
		}, []string{"path", "result"}),
		unreachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "overlayd_peers_unreachable", Help: "Peers whose last health probe on the path went unanswered.",
		}, []string{"path"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "overlayd_peer_probe_packets_sent_total", Help: "Health probe requests sent (tries included).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rtt, m.probes, m.unreachable, m.sent} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(path Path, rtt time.Duration, ok bool) {
	if ok {
		m.rtt.WithLabelValues(string(path)).Observe(rtt.Seconds())
		m.probes.WithLabelValues(string(path), "ok").Inc()
		return
	}
	m.probes.WithLabelValues(string(path), "lost").Inc()
}
