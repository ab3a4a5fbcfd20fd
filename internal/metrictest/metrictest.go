// Package metrictest reads metrics back from a Prometheus Gatherer in
// tests: whether a family is there, how many series it has, and the value
// of one series picked by its labels.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Family returns the metric family called name that g gathers, or nil
// when there is none. A Gather error fails the test.
func Family(t testing.TB, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// Has tells whether g gathers a family called name.
func Has(t testing.TB, g prometheus.Gatherer, name string) bool {
	t.Helper()
	return Family(t, g, name) != nil
}

// Series is the number of series of the family called name (0 when g has
// no such family).
func Series(t testing.TB, g prometheus.Gatherer, name string) int {
	t.Helper()
	return len(Family(t, g, name).GetMetric())
}

// Lookup returns the value of the first series of the family called name
// that carries every label of labels (nil or empty: the first series),
// and whether there is one. The value is the counter's if the series is a
// counter, else the gauge's.
func Lookup(t testing.TB, g prometheus.Gatherer, name string, labels prometheus.Labels) (float64, bool) {
	t.Helper()
	for _, m := range Family(t, g, name).GetMetric() {
		if !carries(m, labels) {
			continue
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// Value is Lookup's value, failing the test when no series matches.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels prometheus.Labels) float64 {
	t.Helper()
	v, ok := Lookup(t, g, name, labels)
	if !ok {
		t.Fatalf("no metric %s%v", name, labels)
	}
	return v
}

// carries tells whether m has every label of want with its value.
func carries(m *dto.Metric, want prometheus.Labels) bool {
	have := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
