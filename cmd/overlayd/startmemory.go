package main

import (
	"context"
	"runtime/debug"
)

// releaseStartMemory returns the start's garbage to the OS once the first
// sync is done. Listing, decoding and programming every peer at start
// allocates several times the live state (at 100,000 peers the heap peaks
// near 300 MiB for 130 MB live); the Go runtime hands freed pages back
// only gradually, so without this the idle daemon's RSS stays near that
// peak for minutes. One forced collection, once, at a moment the daemon
// has nothing else to do.
func releaseStartMemory(ctx context.Context, synced <-chan struct{}, free func()) error {
	select {
	case <-ctx.Done():
	case <-synced:
		free()
	}
	return nil
}

// freeOSMemory is releaseStartMemory's free in the daemon.
func freeOSMemory() { debug.FreeOSMemory() }
