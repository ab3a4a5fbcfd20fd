package backend

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// passKind indexes the kind label of passes_total.
type passKind uint8

const (
	passIncremental passKind = iota
	passFull
)

func passKindName(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

// syncMetrics are the reconciler's overlayd_sync_* metrics. Every labelled
// child is resolved once here, so that the hot path does no label lookup.
// Without a Registerer they are updated but never exported.
type syncMetrics struct {
	passes        [2]prometheus.Counter
	writes        [numKinds][numOps]prometheus.Counter
	errors        [numKinds][numOps]prometheus.Counter
	drift         [numKinds]prometheus.Counter
	kernelEntries [numKinds]prometheus.Gauge
	passDuration  prometheus.Histogram
	// dumps counts full reads of the kernel by reason; dumpDuration times
	// them (a part of the full pass they start).
	dumps        [numDumpReasons]prometheus.Counter
	dumpDuration prometheus.Histogram
	// events counts kernel notifications read; eventChanges those that
	// changed the believed state (someone else's change to our entries).
	events, eventChanges prometheus.Counter
	peers                prometheus.Gauge
	inSync               prometheus.Gauge
	// routeMode is 1 for the route mode in use (onlink or nexthop).
	routeMode map[RouteMode]prometheus.Gauge
}

// setRouteMode exports the route mode in use.
func (m *syncMetrics) setRouteMode(nexthop bool) {
	m.routeMode[RouteModeNexthop].Set(b2f(nexthop))
	m.routeMode[RouteModeOnlink].Set(b2f(!nexthop))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func newSyncMetrics(reg prometheus.Registerer) (*syncMetrics, error) {
	const ns, sub = "overlayd", "sync"
	passes := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "passes_total",
		Help: "Reconciler passes by kind: incremental (dirty entries only) or full (kernel dump and diff)."}, []string{"kind"})
	writes := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "writes_total",
		Help: "Netlink writes by entry kind and operation."}, []string{"entry", "op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
		Help: "Failed netlink writes and dumps by entry kind and operation (add, del, dump)."}, []string{"entry", "op"})
	drift := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "drift_repaired_total",
		Help: "Entries a full resync found missing, altered or stale and repaired."}, []string{"entry"})
	kernel := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "kernel_entries",
		Help: "Entries of ours the kernel holds, as last read and written."}, []string{"entry"})
	mode := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "route_mode",
		Help: "1 for the shape of peer routes in use: onlink (flannel's) or nexthop (one nexthop object per peer)."}, []string{"mode"})
	m := &syncMetrics{
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "pass_duration_seconds", Help: "Duration of reconciler passes.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "peers",
			Help: "Peers the reconciler programs."}),
		inSync: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "in_sync",
			Help: "1 when every desired entry is in the kernel and nothing is failing."}),
	}
	dumps := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dumps_total",
		Help: "Full reads of the kernel's tables by reason (start, no-events, events-lost, failure, device, interval)."}, []string{"reason"})
	for d := range numDumpReasons {
		m.dumps[d] = dumps.WithLabelValues(d.String())
	}
	m.dumpDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
		Name: "dump_duration_seconds", Help: "Duration of the kernel dumps that start some full passes.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)})
	m.events = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "kernel_events_total",
		Help: "Kernel notifications (neighbours, FDB, routes, nexthops, links) read."})
	m.eventChanges = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "kernel_event_changes_total",
		Help: "Kernel notifications that changed what the reconciler believes the kernel holds (not its own writes' echoes)."})
	m.routeMode = map[RouteMode]prometheus.Gauge{RouteModeOnlink: mode.WithLabelValues(string(RouteModeOnlink)),
		RouteModeNexthop: mode.WithLabelValues(string(RouteModeNexthop))}
	m.passes[passIncremental] = passes.WithLabelValues("incremental")
	m.passes[passFull] = passes.WithLabelValues("full")
	for k := range numKinds {
		for op := range numOps {
			m.writes[k][op] = writes.WithLabelValues(k.String(), op.String())
			m.errors[k][op] = errs.WithLabelValues(k.String(), op.String())
		}
		m.drift[k] = drift.WithLabelValues(k.String())
		m.kernelEntries[k] = kernel.WithLabelValues(k.String())
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{passes, writes, errs, drift, kernel, m.passDuration, m.peers, m.inSync, mode,
		dumps, m.dumpDuration, m.events, m.eventChanges} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register sync metrics: %w", err)
		}
	}
	return m, nil
}
