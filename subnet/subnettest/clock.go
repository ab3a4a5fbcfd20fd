// Package subnettest provides in-memory fakes for the subnet package's
// seams: a Registry that behaves like etcd (atomic creates, TTL expiry on
// an injectable clock, revisions, watches, lost history, injectable
// errors), a manual Clock, and a recording PeerSink.
package subnettest

import (
	"slices"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Clock is a manual subnet.Clock: time moves only when Advance is called.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced when timers are added
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock reaches now+d; a
// non-positive d fires at once.
func (c *Clock) NewTimer(d time.Duration) subnet.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{clock: c, deadline: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

// Advance moves the clock forward by d, firing due timers in deadline order.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortFunc(c.timers, func(a, b *timer) int { return a.deadline.Compare(b.deadline) })
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.deadline.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// Pending returns how many timers wait to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest pending timer's deadline.
func (c *Clock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	next := c.timers[0].deadline
	for _, t := range c.timers[1:] {
		if t.deadline.Before(next) {
			next = t.deadline
		}
	}
	return next, true
}

// WaitForTimers blocks until at least n timers are pending, or timeout
// (real time) passes; it reports whether they are.
func (c *Clock) WaitForTimers(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		count, changed := len(c.timers), c.changed
		c.mu.Unlock()
		if count >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// AdvanceToNext waits (up to timeout) for a pending timer and moves the
// clock to the earliest deadline, firing it. It returns the step taken.
func (c *Clock) AdvanceToNext(timeout time.Duration) (time.Duration, bool) {
	if !c.WaitForTimers(1, timeout) {
		return 0, false
	}
	next, ok := c.NextDeadline()
	if !ok {
		return 0, false
	}
	step := next.Sub(c.Now())
	c.Advance(step)
	return step, true
}

type timer struct {
	clock    *Clock
	deadline time.Time
	ch       chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	return true
}
