// Package metricreg registers a component's Prometheus collectors the way
// the daemon's components share: a nil Registerer means the metrics are
// kept up to date but not exported.
package metricreg

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// All registers cs with reg (nil: none is exported). The first failure is
// returned, naming of, whose metrics they are.
func All(reg prometheus.Registerer, of string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%s: register metrics: %w", of, err)
		}
	}
	return nil
}
