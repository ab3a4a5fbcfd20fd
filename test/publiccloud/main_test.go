package publiccloud

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// overlaydBin is built once in TestMain, only as root.
var overlaydBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "overlayd-publiccloud-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if overlaydBin, err = lab.BuildOverlayd(ctx, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}
