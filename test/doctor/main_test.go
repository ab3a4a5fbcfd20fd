package doctor

import (
	"os"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

// overlaydBin is built once in TestMain, only as root.
var overlaydBin string

func TestMain(m *testing.M) {
	os.Exit(lab.RunWithOverlayd(m, &overlaydBin))
}
