//go:build memprof

package main

// A measurement build only (go build -tags memprof): with
// OVERLAYD_HEAPPROF=DIR in its environment the daemon writes a heap
// profile to DIR/heap-<pid>-<n>.pprof every 5 s, after a collection, so
// that a syncbench run (-bin, -daemon-env) leaves the profile of each N's
// idle daemon; OVERLAYD_MEMPROFILERATE sets runtime.MemProfileRate (e.g.
// 64 for exact figures at 10,000 peers). See docs/performance.md.

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"
)

func init() {
	dir := os.Getenv("OVERLAYD_HEAPPROF")
	if dir == "" {
		return
	}
	if r, err := strconv.Atoi(os.Getenv("OVERLAYD_MEMPROFILERATE")); err == nil {
		runtime.MemProfileRate = r
	}
	go writeHeapProfiles(dir)
}

func writeHeapProfiles(dir string) {
	for i := 0; ; i++ {
		time.Sleep(5 * time.Second)
		runtime.GC()
		f, err := os.Create(fmt.Sprintf("%s/heap-%d-%03d.pprof", dir, os.Getpid(), i))
		if err != nil {
			continue
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}
