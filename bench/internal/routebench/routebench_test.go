package routebench

import (
	"context"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestMeasureSmall checks both ways install and verify every route (not
// how fast).
func TestMeasureSmall(t *testing.T) {
	netnsutil.RequireRoot(t)
	const n = 100
	r, err := Measure(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Routes != n || r.Classic.Seconds <= 0 || r.Classic.TeardownSeconds <= 0 {
		t.Errorf("classic figures missing: %+v", r)
	}
	if r.NexthopSupported && (r.Nexthop.Seconds <= 0 || r.Nexthop.LastTenthPerSecond <= 0) {
		t.Errorf("nexthop figures missing: %+v", r)
	}
}
