package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// soakFor enables the long tests (the randomised soak and the renewal
// falling due during an outage) when positive.
var soakFor = flag.Duration("soak", 0, "run the long soak and renewal tests for this long (0: skip them)")

// overlaydBin is built once in TestMain, only as root (every test here
// needs root and skips otherwise).
var overlaydBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "overlayd-faults-")
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

// requireSoak skips a long test unless -soak was given.
func requireSoak(t *testing.T) time.Duration {
	t.Helper()
	if *soakFor <= 0 {
		t.Skip("long test: run with -soak=DURATION (e.g. -soak=5m)")
	}
	return *soakFor
}
