package main

import (
	"context"
	"log/slog"
	"math"
	"runtime/metrics"
	"time"
)

// Once in sync, the daemon's heap holds its peer state and little else,
// and it allocates slowly. With the collector's default pacing alone
// (GOGC=100) the heap still grows to twice that state before each
// collection, whatever the garbage is (a metrics scrape, an event): at
// 100,000 peers, 120 MB live meant an RSS swinging between 150 and 270
// MiB. So the daemon keeps a soft memory limit a fixed share above the
// live heap, re-read every heapHeadroomPoll: the collector runs before
// the heap passes live × (1 + heapHeadroomShare) + heapHeadroomFloor. The
// limit counts all of the runtime's memory, so what is not heap (stacks,
// the collector's metadata) is added to it as measured: a limit under
// that would make the collector run without pause. Below about 21 MiB
// live the default pacing is the tighter bound and the limit changes
// nothing. An operator's GOMEMLIMIT is left alone.
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
	memory         func() runtimeBytes
	setMemoryLimit func(int64) int64
	log            *slog.Logger
	limit          int64
}

// runtimeBytes is what the limit is made from: the live heap and the
// runtime's memory that is not heap.
type runtimeBytes struct{ live, other uint64 }

// headroomLimit is the soft memory limit for m.
func headroomLimit(m runtimeBytes) int64 {
	return int64(float64(m.live)*(1+heapHeadroomShare)) + heapHeadroomFloor + int64(m.other)
}

// update sets the limit for the memory now, unless it is within the
// slack of the one set.
func (h *heapHeadroom) update() {
	want := headroomLimit(h.memory())
	if h.limit != 0 && math.Abs(float64(want-h.limit)) <= heapHeadroomSlack*float64(h.limit) {
		return
	}
	h.setMemoryLimit(want)
	h.limit = want
	h.log.Debug("soft memory limit set above the live heap", "limit_mib", want>>20)
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

// readRuntimeBytes reads the live heap and the runtime's memory outside
// the heap's spans (total mapped, less what the heap's spans hold or
// released).
func readRuntimeBytes() runtimeBytes {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	heap := v[2] + v[3] + v[4] + v[5]
	var other uint64
	if v[1] > heap {
		other = v[1] - heap
	}
	return runtimeBytes{live: v[0], other: other}
}
