package peerset

import (
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/metricreg"
	"github.com/overlayd/overlayd/subnet"
)

// Refused is one peer lease that is not used as it stands, for /status.
type Refused struct {
	Subnet netip.Prefix
	// Reason is the metric label (Reason* constants); Field and Value name
	// what is at fault; Message says it in words.
	Reason, Field, Value, Message string
	// Since is when the lease was first refused for this reason.
	Since time.Time
	// Kept: the subnet keeps its last good state (or its kernel entries);
	// otherwise it has no peer at all.
	Kept bool
}

// refusedMetric is overlayd_peer_leases_refused{reason}.
func newRefusedMetric(reg prometheus.Registerer) (*prometheus.GaugeVec, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "overlayd_peer_leases_refused",
		Help: "Peer leases currently refused or skipped, by reason (see /status refused_leases).",
	}, []string{"reason"})
	if err := metricreg.All(reg, "peer set", g); err != nil {
		return nil, err
	}
	return g, nil
}

// setRefusal records ref on e, logging it once per subnet and message.
func (s *Set) setRefusal(e *entry, ref *refusal) {
	sub := e.sub
	if old := e.refusal; old != nil && old.reason == ref.reason && old.Error() == ref.Error() {
		ref.since = old.since
		e.refusal = ref
		return
	}
	if e.refusal != nil {
		s.refused.WithLabelValues(e.refusal.reason).Dec()
	}
	ref.since = s.o.Clock.Now()
	e.refusal = ref
	s.refused.WithLabelValues(ref.reason).Inc()
	s.refusalsChanged = true
	if ref.reason == ReasonOverlapsPeer {
		s.overlapRefused[sub] = struct{}{}
	} else {
		delete(s.overlapRefused, sub)
	}
	switch ref.reason {
	case ReasonUnreadable:
		// The lease manager warned already.
		s.log.Debug("keeping the entries of a subnet whose lease is unreadable", "lease", subnet.KeyName(sub))
	case ReasonMalformed, ReasonOutsideNetwork:
		s.log.Warn("skipping malformed peer lease", "lease", subnet.KeyName(sub), "field", ref.field, "value", ref.value, "reason", ref.Error())
	default:
		s.log.Warn("refusing peer lease", "lease", subnet.KeyName(sub), "field", ref.field, "value", ref.value,
			"refusal", ref.reason, "reason", ref.Error())
	}
}

// clearRefusal forgets e's refusal.
func (s *Set) clearRefusal(e *entry) {
	if e.refusal == nil {
		return
	}
	s.refused.WithLabelValues(e.refusal.reason).Dec()
	delete(s.overlapRefused, e.sub)
	e.refusal = nil
	s.refusalsChanged = true
}

// publishRefused copies the refusals for Refused when they changed.
func (s *Set) publishRefused() {
	if !s.refusalsChanged {
		return
	}
	s.refusalsChanged = false
	var list []Refused
	for sub, e := range s.peers {
		if r := e.refusal; r != nil {
			list = append(list, Refused{Subnet: sub, Reason: r.reason, Field: r.field, Value: r.value,
				Message: r.Error(), Since: r.since, Kept: !r.withdraw})
		}
	}
	slices.SortFunc(list, func(a, b Refused) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	s.statusMu.Lock()
	s.refusedList = list
	s.statusMu.Unlock()
}

// Refused returns the peer leases refused now, sorted by subnet; safe
// from any goroutine.
func (s *Set) Refused() []Refused {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return slices.Clone(s.refusedList)
}
