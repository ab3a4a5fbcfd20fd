package main

import (
	"context"
	"log/slog"
	"math"
	"slices"
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
		// large: the heap headroom ran before the sync.
		large bool
	}{
		{"tight until the sync, then freed", "", 1 << 20, true, startGCPercent, 100, 1, false},
		{"a large live heap ends it early", "", startGCHeapCap + 1, true, 100, 100, 1, true},
		{"the operator's GOGC is left alone", "200", 1 << 20, true, 100, 100, 1, true},
		{"stopped before the sync: restored, not freed", "", 1 << 20, false, startGCPercent, 100, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &fakeRuntime{percent: 100, live: tt.live}
			s := lowerGC(rt.memory(), tt.gogc)
			large := false
			s.large = func() { large = true }
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
			if large != tt.large {
				t.Errorf("heap headroom before the sync: %v, want %v", large, tt.large)
			}
			if rt.percent != tt.percentAfter || rt.freed != tt.freed {
				t.Errorf("after: GOGC %d, freed %d times; want %d, %d", rt.percent, rt.freed, tt.percentAfter, tt.freed)
			}
		})
	}
}

func TestHeapHeadroom(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name string
		// live is the live heap each update reads (with 8 MiB not heap).
		live []uint64
		// want is every limit set, in order.
		want []int64
	}{
		{"a small heap", []uint64{4 * mib}, []int64{29 * mib}},
		{"100,000 peers", []uint64{120 * mib}, []int64{174 * mib}},
		{"within the slack: kept", []uint64{120 * mib, 122 * mib, 118 * mib}, []int64{174 * mib}},
		{"the peer state grows, then shrinks", []uint64{120 * mib, 160 * mib, 40 * mib},
			[]int64{174 * mib, 224 * mib, 74 * mib}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := 0
			var set []int64
			h := &heapHeadroom{
				memory: func() runtimeBytes {
					v := tt.live[min(i, len(tt.live)-1)]
					i++
					return runtimeBytes{live: v, other: 8 * mib}
				},
				setMemoryLimit: func(l int64) int64 { set = append(set, l); return 0 },
				log:            slog.New(slog.DiscardHandler),
			}
			ctx, cancel := context.WithCancel(t.Context())
			tick := make(chan time.Time)
			done := make(chan error, 1)
			go func() { done <- h.run(ctx, tick) }()
			for range len(tt.live) - 1 {
				tick <- time.Time{}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if last := set[len(set)-1]; last != math.MaxInt64 {
				t.Errorf("the limit left at %d when stopped, want none", last)
			}
			if got := set[:len(set)-1]; !slices.Equal(got, tt.want) {
				t.Errorf("limits set %v, want %v", got, tt.want)
			}
		})
	}
}
