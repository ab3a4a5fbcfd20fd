package resync_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/resync"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// TestLoopLogsChangesOnly: the same failure twice is logged once, a
// different one again, the recovery once, and a success after a success
// not at all; the loop checks once per tick and ends with its context.
func TestLoopLogsChangesOnly(t *testing.T) {
	outcomes := []error{errors.New("a"), errors.New("a"), errors.New("b"), nil, nil}
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var logs bytes.Buffer // read only after the loop ended
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan int, len(outcomes))
	n := 0
	ensure := func() error {
		err := outcomes[n]
		n++
		calls <- n
		if n == len(outcomes) {
			cancel()
		}
		return err
	}
	done := make(chan error, 1)
	go func() {
		done <- resync.Loop(ctx, clock, time.Minute, ensure, resync.Logging{
			Log:     slog.New(slog.NewTextHandler(&logs, nil)),
			Failing: "rules not in place", Recovered: "rules in place again", Attrs: []any{"every", time.Minute},
		})
	}()
	for range outcomes {
		<-calls
		if ctx.Err() == nil {
			clock.AdvanceToNext(5 * time.Second)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Loop = %v, want nil", err)
	}
	got := logs.String()
	for _, want := range []string{`msg="rules not in place" every=1m0s err=a`, `msg="rules not in place" every=1m0s err=b`, `msg="rules in place again"`} {
		if strings.Count(got, want) != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(got, want), got)
		}
	}
	if lines := strings.Count(got, "\n"); lines != 3 {
		t.Errorf("%d log lines, want 3:\n%s", lines, got)
	}
}

// TestBoardAddsRepairs: each check replaces the outcome and adds its
// repairs to the total.
func TestBoardAddsRepairs(t *testing.T) {
	var b resync.Board
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	boom := errors.New("boom")
	b.Record(t0, nil, 2)
	b.Record(t0.Add(time.Minute), boom, 1)
	got := b.Status()
	if !got.LastCheck.Equal(t0.Add(time.Minute)) || got.InPlace || got.Repairs != 3 || got.LastError != boom {
		t.Errorf("Status = %+v, want the second check's outcome with 3 repairs", got)
	}
	b.Record(t0.Add(2*time.Minute), nil, 0)
	if got := b.Status(); !got.InPlace || got.LastError != nil || got.Repairs != 3 {
		t.Errorf("Status = %+v, want in place, 3 repairs", got)
	}
}

// TestPeerFilterLoopRefusesANonPositiveInterval: the interval is checked
// before anything runs, and the error names the value.
func TestPeerFilterLoopRefusesANonPositiveInterval(t *testing.T) {
	for _, every := range []time.Duration{0, -time.Second} {
		ran := false
		err := resync.PeerFilterLoop(t.Context(), subnettest.NewClock(time.Unix(0, 0)), slog.New(slog.DiscardHandler), every,
			func() error { ran = true; return nil })
		if err == nil || !strings.Contains(err.Error(), every.String()) || ran {
			t.Fatalf("interval %s: err %v, ensure ran %t; want an error naming the interval and no run", every, err, ran)
		}
	}
}
