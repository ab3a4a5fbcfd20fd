package main

import (
	"context"
	"math"
	"time"
)

// Once in sync, the daemon's heap holds its peer state and little else,
// and it allocates slowly. With the collector's default pacing alone
// (GOGC=100) the heap still grows to twice that state before each
// collection, whatever the garbage is (a metrics scrape, an event): at
// 100,000 peers, 120 MB live meant an RSS swinging between 150 and 270
// MiB. So the daemon keeps a soft memory limit a fixed share above the
// live heap, re-read every heapHeadroomPoll: the collector runs before
// the heap passes live × (1 + heapHeadroomShare) + heapHeadroomFloor.
// Below about 21 MiB live the default pacing is the tighter bound and the
// limit changes nothing. An operator's GOMEMLIMIT is left alone.
const (
	heapHeadroomShare = 0.25
	heapHeadroomFloor = 16 << 20
	heapHeadroomPoll  = time.Second
	// heapHeadroomSlack: the limit is reset only when it moves by more
	// than this share.
	heapHeadroomSlack = 0.05
)

// heapHeadroom keeps the soft memory limit at the live heap plus the
// headroom.
type heapHeadroom struct {
	liveHeap       func() uint64
	setMemoryLimit func(int64) int64
	limit          int64
}

// headroomLimit is the soft memory limit for a live heap.
func headroomLimit(live uint64) int64 {
	return int64(float64(live)*(1+heapHeadroomShare)) + heapHeadroomFloor
}

// update sets the limit for the live heap now, unless it is within the
// slack of the one set.
func (h *heapHeadroom) update() {
	want := headroomLimit(h.liveHeap())
	if h.limit != 0 && math.Abs(float64(want-h.limit)) <= heapHeadroomSlack*float64(h.limit) {
		return
	}
	h.setMemoryLimit(want)
	h.limit = want
}

// run updates the limit now and on every tick until ctx ends, and takes
// the limit away at the end.
func (h *heapHeadroom) run(ctx context.Context, tick <-chan time.Time) error {
	defer h.setMemoryLimit(math.MaxInt64)
	h.update()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			h.update()
		}
	}
}
