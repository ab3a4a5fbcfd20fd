package main

import (
	"context"
	"testing"
	"time"
)

// fakeRuntime records what startMemory does to the GC.
type fakeRuntime struct {
	percent int
	live    uint64
	freed   int
}

func (f *fakeRuntime) memory() runtimeMemory {
	return runtimeMemory{
		setGCPercent: func(p int) int { old := f.percent; f.percent = p; return old },
		liveHeap:     func() uint64 { return f.live },
		freeOSMemory: func() { f.freed++ },
	}
}

func TestStartMemory(t *testing.T) {
	tests := []struct {
		name string
		gogc string
		// live is the live heap the ticks read; synced: the planes sync.
		live   uint64
		synced bool
		// percentDuring is GOGC after the first tick (before the sync).
		percentDuring, percentAfter, freed int
	}{
		{"tight until the sync, then freed", "", 1 << 20, true, startGCPercent, 100, 1},
		{"a large live heap ends it early", "", startGCHeapCap + 1, true, 100, 100, 1},
		{"the operator's GOGC is left alone", "200", 1 << 20, true, 100, 100, 1},
		{"stopped before the sync: restored, not freed", "", 1 << 20, false, startGCPercent, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &fakeRuntime{percent: 100, live: tt.live}
			s := lowerGC(rt.memory(), tt.gogc)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			plane4, plane6 := make(chan struct{}), make(chan struct{})
			tick := make(chan time.Time)
			done := make(chan error, 1)
			go func() { done <- s.run(ctx, []<-chan struct{}{plane4, plane6}, tick) }()
			tick <- time.Time{}
			tick <- time.Time{} // the first tick is handled once the second is taken
			close(plane4)
			tick <- time.Time{} // still waiting for the IPv6 plane
			if rt.percent != tt.percentDuring || rt.freed != 0 {
				t.Errorf("before every plane synced: GOGC %d, freed %d times; want %d, 0", rt.percent, rt.freed, tt.percentDuring)
			}
			if tt.synced {
				close(plane6)
			} else {
				cancel()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if rt.percent != tt.percentAfter || rt.freed != tt.freed {
				t.Errorf("after: GOGC %d, freed %d times; want %d, %d", rt.percent, rt.freed, tt.percentAfter, tt.freed)
			}
		})
	}
}
