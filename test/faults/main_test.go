package faults

import (
	"flag"
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
	os.Exit(lab.RunWithOverlayd(m, &overlaydBin))
}

// requireSoak skips a long test unless -soak was given.
func requireSoak(t *testing.T) time.Duration {
	t.Helper()
	if *soakFor <= 0 {
		t.Skip("long test: run with -soak=DURATION (e.g. -soak=5m)")
	}
	return *soakFor
}
