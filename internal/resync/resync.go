// Package resync is the check-and-repair loop the rule managers and peer
// filters of both rule modes (iptables, nftables) share: Loop runs a check
// now and then every interval on a clock until its context ends, logging
// only when the outcome changes; Board keeps the last check's Status for
// /status; Interval and Defaults fill in a checker's interval, logger and
// clock.
package resync

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Logging says what to log when a check starts failing (or fails
// differently) and when it succeeds again.
type Logging struct {
	Log *slog.Logger
	// Failing is logged at warn with Attrs and the error.
	Failing string
	// Recovered is logged at info.
	Recovered string
	Attrs     []any
}

// Loop calls ensure now and every interval on clock until ctx ends, then
// returns nil. A failure is logged when it starts or its text changes,
// and retried on the next tick; the first success after one is logged too.
func Loop(ctx context.Context, clock subnet.Clock, every time.Duration, ensure func() error, l Logging) error {
	var last error
	for ctx.Err() == nil {
		err := ensure()
		switch {
		case err != nil && (last == nil || err.Error() != last.Error()):
			l.Log.Warn(l.Failing, append(l.Attrs[:len(l.Attrs):len(l.Attrs)], "err", err)...)
		case err == nil && last != nil:
			l.Log.Info(l.Recovered)
		}
		last = err
		Wait(ctx, clock, every)
	}
	return nil
}

// Wait returns after d on clock, or as soon as ctx ends.
func Wait(ctx context.Context, clock subnet.Clock, d time.Duration) {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

// Status is what the last check found.
type Status struct {
	LastCheck time.Time // end of the last check; zero before the first
	InPlace   bool      // the last check left everything in place
	Repairs   uint64    // things found not in place and rewritten, so far
	LastError error     // what the last check failed to do; nil if nothing
}

// Board holds the latest Status behind its own lock, so that reading it
// (/status) never waits for a check.
type Board struct {
	mu     sync.Mutex
	status Status
}

// Record notes a check that ended at now with err after repairing repairs
// things.
func (b *Board) Record(now time.Time, err error, repairs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = Status{LastCheck: now, InPlace: err == nil, Repairs: b.status.Repairs + uint64(repairs), LastError: err}
}

// Status returns what the last check found.
func (b *Board) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// RulesLogging is the Logging of a rule manager of mode ("iptables",
// "nftables") checking every resync.
func RulesLogging(log *slog.Logger, mode string, resync time.Duration) Logging {
	return Logging{
		Log:       log,
		Failing:   mode + " rules not in place; retrying every resync",
		Recovered: mode + " rules in place again",
		Attrs:     []any{"resync", resync},
	}
}

// PeerFilterLogging is the Logging of a VXLAN peer filter (either mode)
// checking every interval.
func PeerFilterLogging(log *slog.Logger, every time.Duration) Logging {
	return Logging{
		Log:       log,
		Failing:   "vxlan peer filter not in place; retrying",
		Recovered: "vxlan peer filter in place again",
		Attrs:     []any{"every", every},
	}
}

// PeerFilterLoop is Loop for a VXLAN peer filter (either mode): ensure
// now and every interval until ctx ends, logged with PeerFilterLogging. A
// non-positive interval is an error.
func PeerFilterLoop(ctx context.Context, clock subnet.Clock, log *slog.Logger, every time.Duration, ensure func() error) error {
	if every <= 0 {
		return fmt.Errorf("peer filter: resync interval %s is not positive", every)
	}
	return Loop(ctx, clock, every, ensure, PeerFilterLogging(log, every))
}

// Defaults fills in what a checker was not given: a logger that discards
// and the real clock.
func Defaults(log *slog.Logger, clock subnet.Clock) (*slog.Logger, subnet.Clock) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if clock == nil {
		clock = subnet.RealClock()
	}
	return log, clock
}

// Interval is a checker's interval as configured: def when zero, an error
// naming who (e.g. "iptables manager: Options.Resync") when negative.
func Interval(who string, every, def time.Duration) (time.Duration, error) {
	switch {
	case every < 0:
		return 0, fmt.Errorf("%s %s is negative", who, every)
	case every == 0:
		return def, nil
	}
	return every, nil
}
