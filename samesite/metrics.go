package samesite

import (
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of answers_received_total.
const (
	resultAccepted      = "accepted"
	resultWrongSource   = "wrong_source"
	resultWrongIdentity = "wrong_identity"
	resultUnknownNonce  = "unknown_nonce"
	resultBadSignature  = "bad_signature"
)

// metrics are the overlayd_samesite_* metrics; without a Registerer they
// are updated but never exported.
type metrics struct {
	candidates     prometheus.Gauge
	verified       prometheus.Gauge
	probesSent     prometheus.Counter
	answersVec     *prometheus.CounterVec
	fallbacks      prometheus.Counter
	probesAnswered prometheus.Counter
	probesRefused  prometheus.Counter
	malformed      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "overlayd", "samesite"
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		candidates: gauge("candidate_peers", "Peers whose OverlaydPrivateIP is inside our underlay subnet, being probed."),
		verified:   gauge("verified_peers", "Peers verified as same-site: their VXLAN goes to the private address."),
		probesSent: counter("probes_sent_total", "Probes sent to candidate peers."),
		answersVec: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "answers_received_total",
			Help: "Answers to our probes by result: accepted, wrong_source, wrong_identity (another host at that private address), bad_signature (claims a peer's identity without its key: forged), unknown_nonce (late, replayed or forged)."},
			[]string{"result"}),
		fallbacks:      counter("fallbacks_total", "Verified peers that stopped answering and went back to their public address."),
		probesAnswered: counter("probes_answered_total", "Probes from peers that this node's responder answered."),
		probesRefused:  counter("probes_refused_total", "Probes from outside our underlay subnet, not answered."),
		malformed:      counter("malformed_total", "Datagrams on the same-site port that are not a valid message."),
	}
	for _, r := range []string{resultAccepted, resultWrongSource, resultWrongIdentity, resultBadSignature, resultUnknownNonce} {
		m.answersVec.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.candidates, m.verified, m.probesSent, m.answersVec,
		m.fallbacks, m.probesAnswered, m.probesRefused, m.malformed} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

func (m *metrics) answers(result string) prometheus.Counter {
	return m.answersVec.WithLabelValues(result)
}

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }
