package resync_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/resync"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// syncBuffer is a log sink safe for the loop's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoopLogsChangesOnly: the same failure twice is logged once, a
// different one again, the recovery once, and a success after a success
// not at all; the loop checks once per tick and ends with its context.
func TestLoopLogsChangesOnly(t *testing.T) {
	outcomes := []error{errors.New("a"), errors.New("a"), errors.New("b"), nil, nil}
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var logs syncBuffer
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
