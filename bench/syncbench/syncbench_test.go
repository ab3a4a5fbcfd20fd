package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestSmoke runs the whole harness at 50 peers with few events and one
// short idle pass, in each route mode: it checks that every phase works,
// not how fast.
func TestSmoke(t *testing.T) {
	netnsutil.RequireRoot(t)
	if _, err := etcdtest.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	bin := lab.BuildOverlaydT(t)
	for _, mode := range []string{"onlink", "nexthop"} {
		t.Run(mode, func(t *testing.T) { testSmoke(t, bin, mode) })
	}
}

func testSmoke(t *testing.T, bin, mode string) {
	s := settings{
		bin: bin, events: 5, resync: time.Second, idlePasses: 1,
		workDir: t.TempDir(), log: slog.New(slog.DiscardHandler),
		routeMode: mode, subnetLen: 24, removeAll: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 50
	r, err := runOne(ctx, s, n)
	if err != nil {
		t.Fatal(err)
	}
	if k := r.Cold.Kernel; k.Neighbours != n || k.FDB != n || k.Routes != n {
		t.Errorf("cold: kernel has %+v, want %d of each", k, n)
	}
	writes := 3 * n
	limit := r.Baseline.TotalSeconds
	if mode == "nexthop" {
		writes, limit = 4*n, r.Baseline.TotalNexthopSeconds
	}
	if r.Cold.Writes != float64(writes) {
		t.Errorf("cold: %v writes, want %d", r.Cold.Writes, writes)
	}
	if r.Cold.RouteMode != mode {
		t.Errorf("cold: route mode %q in use, want %q", r.Cold.RouteMode, mode)
	}
	if r.Warm.Writes != 0 || r.Warm.Notifications != 0 {
		t.Errorf("warm restart wrote %v entries (%d notifications), want none", r.Warm.Writes, r.Warm.Notifications)
	}
	if r.Events.AddP50Ms <= 0 || len(r.Idle.PassesMs) != 1 || r.Idle.Memory.RSSMiB <= 0 || limit <= 0 {
		t.Errorf("missing figures: %+v", r)
	}
	if r.RemoveAll.Seconds <= 0 || r.RemoveAll.Writes < float64(writes) {
		t.Errorf("remove all: %+v, want at least %d writes", r.RemoveAll, writes)
	}
	md := renderMarkdown(report{Runs: []runResult{r}, Targets: judge([]runResult{r})})
	if !strings.Contains(md, "| N=50 |") {
		t.Errorf("report lacks the N=50 column:\n%s", md)
	}
}
