package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// testRegistry has a labelled counter with two series and a plain gauge.
func testRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_total", Help: "h"}, []string{"result"})
	c.WithLabelValues("ok").Add(3)
	c.WithLabelValues("error").Add(2)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "h"})
	g.Set(7)
	reg.MustRegister(c, g)
	return reg
}

func TestLookup(t *testing.T) {
	reg := testRegistry()
	tests := []struct {
		name   string
		metric string
		labels prometheus.Labels
		want   float64
		ok     bool
	}{
		{name: "counter by label", metric: "test_total", labels: prometheus.Labels{"result": "error"}, want: 2, ok: true},
		{name: "gauge, no labels", metric: "test_gauge", want: 7, ok: true},
		{name: "no labels: the first series", metric: "test_total", labels: prometheus.Labels{}, want: 2, ok: true},
		{name: "label value not there", metric: "test_total", labels: prometheus.Labels{"result": "other"}},
		{name: "label name not there", metric: "test_total", labels: prometheus.Labels{"reason": "ok"}},
		{name: "no family", metric: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(t, reg, tt.metric, tt.labels)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Lookup(%s, %v) = %v, %v; want %v, %v", tt.metric, tt.labels, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFamilies(t *testing.T) {
	reg := testRegistry()
	if !Has(t, reg, "test_gauge") || Has(t, reg, "missing") {
		t.Error("Has does not tell the families apart")
	}
	if n := Series(t, reg, "test_total"); n != 2 {
		t.Errorf("Series(test_total) = %d, want 2", n)
	}
	if n := Series(t, reg, "missing"); n != 0 {
		t.Errorf("Series(missing) = %d, want 0", n)
	}
	if v := Value(t, reg, "test_total", prometheus.Labels{"result": "ok"}); v != 3 {
		t.Errorf("Value(test_total{result=ok}) = %v, want 3", v)
	}
}
