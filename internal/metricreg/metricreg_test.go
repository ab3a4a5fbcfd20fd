package metricreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAll(t *testing.T) {
	newGauge := func() prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "overlayd_test_gauge", Help: "A test gauge."})
	}
	if err := All(nil, "test", newGauge()); err != nil {
		t.Fatalf("All(nil) = %v, want nil", err)
	}
	reg := prometheus.NewRegistry()
	if err := All(reg, "test", newGauge()); err != nil {
		t.Fatalf("All = %v", err)
	}
	err := All(reg, "test", newGauge())
	if err == nil || !strings.Contains(err.Error(), "test: register metrics") {
		t.Fatalf("All with a duplicate = %v, want an error naming the test metrics", err)
	}
}
