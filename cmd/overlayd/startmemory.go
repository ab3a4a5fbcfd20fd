package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/overlayd/overlayd/backend"
)

// The daemon's start allocates several times its live state: every lease
// or Node is listed, decoded and programmed at once, and most of what that
// allocates is garbage a moment later. With the collector's default
// pacing (GOGC=100) the heap grows to twice the live state before each
// collection, and the RSS peak of a start is set by that garbage, not by
// the peers (at 10,000 Nodes in kube mode: 61–70 MiB peak for 46 MiB once
// in sync). So the start runs with a tighter target, startGCPercent, while
// the live heap is small, and ends by handing the garbage back to the OS.
const (
	// startGCPercent is GOGC during the start.
	startGCPercent = 25
	// startGCHeapCap: past this live heap (a cluster of tens of thousands
	// of peers) the default pacing comes back at once, because there a
	// collection every 25% of growth costs seconds of start-up; the heap
	// headroom's soft limit (heapheadroom.go), re-read on every tick,
	// bounds the rest of the start instead.
	startGCHeapCap = 64 << 20
	// startGCPoll is how often the live heap is read during the start.
	startGCPoll = 50 * time.Millisecond
)

// runtimeMemory is what startMemory changes and reads of the Go runtime.
type runtimeMemory struct {
	setGCPercent func(int) int
	liveHeap     func() uint64
	freeOSMemory func()
}

// goRuntime is the real runtime.
func goRuntime() runtimeMemory {
	return runtimeMemory{setGCPercent: debug.SetGCPercent, liveHeap: liveHeapBytes, freeOSMemory: debug.FreeOSMemory}
}

// liveHeapBytes is the heap the last collection found live.
func liveHeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// startMemory is the start's memory policy: a tighter GC target from
// lowerGC until the first sync of every plane (or a large live heap), and
// one release of the start's garbage to the OS after that sync.
type startMemory struct {
	rt      runtimeMemory
	restore int
	lowered bool
	// large is called on every tick once the GC target is the default
	// again before the sync (a large start): the heap headroom.
	large func()
}

// lowerGC tightens the GC target, unless the operator set GOGC (gogcEnv,
// the variable's value): their setting wins.
func lowerGC(rt runtimeMemory, gogcEnv string) *startMemory {
	s := &startMemory{rt: rt}
	if gogcEnv == "" {
		s.restore, s.lowered = rt.setGCPercent(startGCPercent), true
	}
	return s
}

// lowerGCFromEnv is lowerGC in the daemon.
func lowerGCFromEnv() *startMemory { return lowerGC(goRuntime(), os.Getenv("GOGC")) }

// restoreGC puts the GC target back (once).
func (s *startMemory) restoreGC() {
	if s.lowered {
		s.rt.setGCPercent(s.restore)
		s.lowered = false
	}
}

// run waits for every synced channel, restoring the GC target early when
// the live heap passes startGCHeapCap (read on each tick), then restores
// it and frees the start's garbage. When ctx ends first it only restores.
func (s *startMemory) run(ctx context.Context, synced []<-chan struct{}, tick <-chan time.Time) error {
	defer s.restoreGC()
	for _, ch := range synced {
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-ch:
				waiting = false
			case <-tick:
				if s.lowered && s.rt.liveHeap() > startGCHeapCap {
					s.restoreGC()
				}
				if !s.lowered && s.large != nil {
					s.large()
				}
			}
		}
	}
	s.restoreGC()
	s.rt.freeOSMemory()
	return nil
}

// runStartMemory runs the start's memory policy until every plane's
// reconciler is in sync, then keeps the heap's headroom (heapheadroom.go)
// unless the operator set GOMEMLIMIT.
func (d *daemon) runStartMemory(ctx context.Context) error {
	var synced []<-chan struct{}
	for _, rec := range []*backend.Reconciler{d.rec, d.rec6} {
		if rec != nil {
			synced = append(synced, rec.Synced())
		}
	}
	var h *heapHeadroom
	if os.Getenv("GOMEMLIMIT") == "" {
		h = &heapHeadroom{memory: readRuntimeBytes, setMemoryLimit: debug.SetMemoryLimit, log: d.log}
		d.startMem.large = h.update
	}
	tick := time.NewTicker(startGCPoll)
	defer tick.Stop()
	if err := d.startMem.run(ctx, synced, tick.C); err != nil || ctx.Err() != nil || h == nil {
		return err
	}
	tick.Reset(heapHeadroomPoll)
	return h.run(ctx, tick.C)
}
