package main

import (
	"log/slog"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// failureLogEvery is how often a failure that keeps repeating is logged
// again after its first line.
const failureLogEvery = 5 * time.Minute

// failureLog logs a failure that repeats (the peer filter retried every
// second with ipset gone) once, then at most every interval with the
// number of failures since the last line, and once more when it stops.
// Not goroutine-safe: one loop owns it.
type failureLog struct {
	log   *slog.Logger
	clock subnet.Clock
	msg   string
	every time.Duration

	failing bool
	last    time.Time // of the last line logged
	since   int       // failures since that line
	total   int       // failures in this run of failures
}

func newFailureLog(log *slog.Logger, clock subnet.Clock, msg string, every time.Duration) *failureLog {
	return &failureLog{log: log, clock: clock, msg: msg, every: every}
}

// failed records a failure and logs it when due.
func (l *failureLog) failed(err error) {
	now := l.clock.Now()
	l.since++
	l.total++
	if l.failing && now.Sub(l.last) < l.every {
		return
	}
	l.log.Error(l.msg, "err", err, "failures", l.total, "failures_since_last_line", l.since, "next_line_in", l.every)
	l.failing, l.last, l.since = true, now, 0
}

// ok records a success; it logs the end of a run of failures.
func (l *failureLog) ok() {
	if !l.failing {
		return
	}
	l.log.Info(l.msg+": recovered", "failures", l.total)
	l.failing, l.since, l.total = false, 0, 0
}
