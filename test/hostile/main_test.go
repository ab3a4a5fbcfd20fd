// Package hostile tries attacks by hostile or broken peers against a
// running three-node cluster in network namespaces with a real etcd:
// leases that would steer a node's traffic (overlapping its subnet, out
// of the network, the wrong length, bogus or own-address PublicIPs). Each
// time the node's own pods stay reachable locally, the mesh keeps working,
// and the refusal shows in the metric and /status.
package hostile

import (
	"os"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

// overlaydBin is built once in TestMain, only as root; OVERLAYD_TEST_BIN
// names a prebuilt binary instead (to show an attack succeeds against an
// older build).
var overlaydBin string

func TestMain(m *testing.M) {
	if bin := os.Getenv("OVERLAYD_TEST_BIN"); bin != "" {
		overlaydBin = bin
		os.Exit(m.Run())
	}
	os.Exit(lab.RunWithOverlayd(m, &overlaydBin))
}
