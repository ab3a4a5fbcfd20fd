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
