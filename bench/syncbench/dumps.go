package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// dumpRuns is how many times the dumps are repeated (the median counts).
const dumpRuns = 5

// dumpResult is the cost of the three dumps a full pass starts with
// (neighbours and FDB of flannel.1, main-table routes), made by the
// harness with the same netlink library overlayd uses: the part of an idle
// pass that is reading the kernel.
type dumpResult struct {
	Ms       float64 `json:"ms"`
	AllocMiB float64 `json:"alloc_mib"`
}

func (b *bench) timeDumps() (dumpResult, error) {
	h, err := netnsutil.Handle(b.node.NS)
	if err != nil {
		return dumpResult{}, err
	}
	defer h.Close()
	link, err := h.LinkByName("flannel.1")
	if err != nil {
		return dumpResult{}, fmt.Errorf("in netns %s: find flannel.1: %w", b.node.NS, err)
	}
	idx := link.Attrs().Index
	var took []time.Duration
	var allocs []uint64
	for range dumpRuns {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		if err := dumpOnce(h, idx); err != nil {
			return dumpResult{}, fmt.Errorf("in netns %s: %w", b.node.NS, err)
		}
		took = append(took, time.Since(start))
		runtime.ReadMemStats(&after)
		allocs = append(allocs, after.TotalAlloc-before.TotalAlloc)
	}
	slices.Sort(allocs)
	return dumpResult{Ms: percentileMs(took, 50), AllocMiB: float64(allocs[len(allocs)/2]) / (1 << 20)}, nil
}

func dumpOnce(h *netlink.Handle, link int) error {
	if _, err := h.NeighList(link, unix.AF_INET); err != nil {
		return fmt.Errorf("dump neighbours: %w", err)
	}
	if _, err := h.NeighList(link, unix.AF_BRIDGE); err != nil {
		return fmt.Errorf("dump fdb: %w", err)
	}
	if _, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE); err != nil {
		return fmt.Errorf("dump routes: %w", err)
	}
	return nil
}
