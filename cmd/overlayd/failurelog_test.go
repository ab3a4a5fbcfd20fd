package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet/subnettest"
)

// TestFailureLogThrottles: a failure repeated every second for ten
// minutes gives one line at first and one per interval after (not 600),
// with the count; a success logs the recovery once.
func TestFailureLogThrottles(t *testing.T) {
	var buf bytes.Buffer
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newFailureLog(slog.New(slog.NewTextHandler(&buf, nil)), clock, "vxlan peer filter update failed", failureLogEvery)
	for range 600 {
		l.failed(errors.New("ipset: not found"))
		clock.Advance(time.Second)
	}
	out := buf.String()
	if n := strings.Count(out, "level=ERROR"); n != 2 {
		t.Fatalf("%d error lines in 10 minutes, want 2 (first, then after 5 minutes):\n%s", n, out)
	}
	if !strings.Contains(out, "failures=301 failures_since_last_line=300") {
		t.Errorf("second line lacks the count:\n%s", out)
	}
	l.ok()
	l.ok()
	if n := strings.Count(buf.String(), "recovered"); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	l.failed(errors.New("again"))
	if n := strings.Count(buf.String(), "level=ERROR"); n != 3 {
		t.Errorf("a new failure after recovery not logged at once")
	}
}
