package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/kernellimit"
	"github.com/overlayd/overlayd/subnet"
)

// coldResult: overlayd started over N leases and an empty kernel.
// Convergence is the first /metrics scrape (every 10ms) showing in_sync=1
// with N peers and N entries of each kind, confirmed by a kernel dump. No
// netlink listener runs meanwhile (nor during the kernel-limit batches):
// parsing 30,000 notifications costs a CPU that the writers would miss.
type coldResult struct {
	// FromStartSeconds: process start to convergence;
	// FromSubnetFileSeconds: subnet file written (its mtime) to the same;
	// SubnetFileSeconds: process start to the subnet file.
	FromStartSeconds      float64 `json:"from_start_seconds"`
	FromSubnetFileSeconds float64 `json:"from_subnet_file_seconds"`
	SubnetFileSeconds     float64 `json:"subnet_file_seconds"`
	// Ratio = FromStartSeconds / kernel limit (classic routes);
	// RatioFromSubnetFile the same from the subnet file.
	Ratio               float64 `json:"ratio"`
	RatioFromSubnetFile float64 `json:"ratio_from_subnet_file"`
	// RouteMode is the mode overlayd reported once in sync (with the
	// default auto: nexthop from 2,000 peers on); the ratios are against
	// the kernel limit of that route shape.
	RouteMode string `json:"route_mode"`
	// Kernel is the final dump of flannel.1.
	Kernel benchns.Counts `json:"kernel"`
	Writes float64        `json:"writes"`
}

func (b *bench) measureCold(ctx context.Context, base kernellimit.Result) (coldResult, error) {
	var res coldResult
	if err := b.d.start(ctx, steadyResync); err != nil {
		return res, err
	}
	pctx, cancel := b.d.phase(ctx, coldTimeout)
	defer cancel()
	at, view, err := b.d.waitConverged(pctx, b.n, syncPoll)
	if err != nil {
		return res, err
	}
	env, err := b.lab.WaitSubnetFile(pctx, b.node)
	if err != nil {
		return res, err
	}
	b.gen.Skip(env.Lease())
	fi, err := os.Stat(b.node.SubnetFile)
	if err != nil {
		return res, fmt.Errorf("subnet file: %w", err)
	}
	res.FromStartSeconds = at.Sub(b.d.started).Seconds()
	res.FromSubnetFileSeconds = at.Sub(fi.ModTime()).Seconds()
	res.SubnetFileSeconds = fi.ModTime().Sub(b.d.started).Seconds()
	limit := base.TotalSeconds
	res.RouteMode = "onlink"
	if view.nexthopMode {
		limit, res.RouteMode = base.TotalNexthopSeconds, "nexthop" // overlayd made nexthop-object routes
	}
	res.Ratio = res.FromStartSeconds / limit
	res.RatioFromSubnetFile = res.FromSubnetFileSeconds / limit
	res.Writes = view.writes
	if res.Kernel, err = b.finalDump(); err != nil {
		return res, err
	}
	if k := res.Kernel; k.Neighbours != b.n || k.FDB != b.n || k.Routes != b.n {
		return res, fmt.Errorf("cold convergence: final dump shows %+v, want %d of each", res.Kernel, b.n)
	}
	return res, nil
}

// eventResult: one new lease put (and later deleted) at a time with N
// peers present; latencies from just before the etcd request to the
// route's notification. The add latency is also split at the arrival of
// the event on a watch of the harness's own: etcd's part (put, commit,
// watch delivery) and overlayd's (its watch through the lab proxy, the
// pass, the three netlink writes, the notification).
type eventResult struct {
	Count    int     `json:"count"`
	AddP50Ms float64 `json:"add_p50_ms"`
	AddP99Ms float64 `json:"add_p99_ms"`
	AddMaxMs float64 `json:"add_max_ms"`
	DelP50Ms float64 `json:"delete_p50_ms"`
	DelP99Ms float64 `json:"delete_p99_ms"`
	DelMaxMs float64 `json:"delete_max_ms"`
	// EtcdP50Ms/EtcdP99Ms: put start to the event on our watch;
	// AgentP50Ms/AgentP99Ms: that event to the route.
	EtcdP50Ms  float64 `json:"etcd_p50_ms"`
	EtcdP99Ms  float64 `json:"etcd_p99_ms"`
	AgentP50Ms float64 `json:"agent_p50_ms"`
	AgentP99Ms float64 `json:"agent_p99_ms"`
}

// eventSamples collects one phase's latencies.
type eventSamples struct {
	adds, dels, etcd, agent []time.Duration
}

func (b *bench) measureEvents(ctx context.Context) (eventResult, error) {
	res := eventResult{Count: b.s.events}
	var s eventSamples
	for range b.s.events {
		p, err := b.gen.Next()
		if err != nil {
			return res, err
		}
		put, err := b.leases.prepare(ctx, p)
		if err != nil {
			return res, err
		}
		seen := b.etcd.expect(p.LeaseKey(subnet.DefaultPrefix), true)
		add, start, at, err := b.timeRoute(ctx, p.Subnet, true, func() error { return b.leases.do(ctx, put) })
		if err != nil {
			return res, err
		}
		if w := stampOf(seen); !w.IsZero() {
			s.etcd, s.agent = append(s.etcd, w.Sub(start)), append(s.agent, at.Sub(w))
		}
		del, _, _, err := b.timeRoute(ctx, p.Subnet, false, func() error { return b.leases.remove(ctx, p) })
		if err != nil {
			return res, err
		}
		s.adds, s.dels = append(s.adds, add), append(s.dels, del)
	}
	res.AddP50Ms, res.AddP99Ms, res.AddMaxMs = percentileMs(s.adds, 50), percentileMs(s.adds, 99), percentileMs(s.adds, 100)
	res.DelP50Ms, res.DelP99Ms, res.DelMaxMs = percentileMs(s.dels, 50), percentileMs(s.dels, 99), percentileMs(s.dels, 100)
	res.EtcdP50Ms, res.EtcdP99Ms = percentileMs(s.etcd, 50), percentileMs(s.etcd, 99)
	res.AgentP50Ms, res.AgentP99Ms = percentileMs(s.agent, 50), percentileMs(s.agent, 99)
	return res, nil
}

// timeRoute runs change and times it until dst appears (or disappears);
// it also returns when change started and when the route notification
// arrived.
func (b *bench) timeRoute(ctx context.Context, dst netip.Prefix, present bool, change func() error) (took time.Duration, start, at time.Time, err error) {
	ch := b.watch.expectRoute(dst, present)
	start = time.Now()
	if err := change(); err != nil {
		b.watch.cancelRoute(dst, present)
		return 0, start, at, err
	}
	at, err = waitStamp(ctx, ch, eventTimeout)
	if err != nil {
		b.watch.cancelRoute(dst, present)
		what := "appear"
		if !present {
			what = "go away"
		}
		if werr := b.watch.Err(); werr != nil {
			err = errors.Join(err, werr)
		}
		return 0, start, at, b.d.explain(fmt.Errorf("event: route %s did not %s: %w", dst, what, err))
	}
	return at.Sub(start), start, at, nil
}

// percentileMs is the nearest-rank percentile in milliseconds.
func percentileMs(samples []time.Duration, p int) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	rank = min(max(rank, 1), len(s))
	return float64(s[rank-1]) / float64(time.Millisecond)
}

// warmResult: overlayd restarted (SIGTERM, start) over a correct kernel.
type warmResult struct {
	// Writes is overlayd_sync_writes_total (every op) once in sync.
	Writes float64 `json:"writes"`
	// Notifications counts kernel notifications about per-peer entries
	// from the SIGTERM to in sync: an independent check of Writes.
	Notifications int     `json:"kernel_notifications"`
	ReadySeconds  float64 `json:"ready_seconds"`
	InSyncSeconds float64 `json:"in_sync_seconds"`
	// StartDumpMs is the restarted agent's one full read of the kernel
	// (overlayd_sync_dump_duration_seconds), the cost every periodic
	// pass paid before notifications kept the believed state current.
	StartDumpMs float64 `json:"start_dump_ms"`
	// ColdDumps and ColdLostDumps are the dumps of the cold-started
	// agent before the SIGTERM (1 and 0 when the echoes of its first
	// pass never overflowed the notification socket).
	ColdDumps     float64 `json:"cold_agent_dumps"`
	ColdLostDumps float64 `json:"cold_agent_dumps_after_lost_events"`
}

func (b *bench) measureWarm(ctx context.Context) (warmResult, error) {
	var res warmResult
	if m, err := scrapeMetrics(ctx, b.node.NS); err == nil {
		res.ColdDumps, res.ColdLostDumps = m.sync().dumps, m.sync().lostDumps
	}
	if err := b.d.stop(); err != nil {
		return res, err
	}
	b.watch.resetNotes()
	if err := b.d.start(ctx, b.s.resync); err != nil {
		return res, err
	}
	pctx, cancel := b.d.phase(ctx, warmTimeout)
	defer cancel()
	readyAt, err := b.d.waitReady(pctx, readyPoll)
	if err != nil {
		return res, err
	}
	inSyncAt, view, err := b.d.waitConverged(pctx, b.n, syncPoll)
	if err != nil {
		return res, err
	}
	res.ReadySeconds = readyAt.Sub(b.d.started).Seconds()
	res.InSyncSeconds = inSyncAt.Sub(b.d.started).Seconds()
	res.Writes = view.writes
	res.StartDumpMs = view.dumpSeconds * 1000
	res.Notifications = b.watch.resetNotes()
	return res, nil
}

// idleResult: periodic full resyncs with nothing to repair.
type idleResult struct {
	ResyncInterval string    `json:"resync_interval"`
	PassesMs       []float64 `json:"passes_ms"`
	MedianMs       float64   `json:"median_ms"`
	MaxMs          float64   `json:"max_ms"`
	// DumpPassesMs are the periodic passes that read the kernel (after
	// lost notifications, a failure, or the safety interval): not idle
	// passes, reported apart.
	DumpPassesMs []float64 `json:"dump_passes_ms"`
	// Dumps and EventChanges during the idle phase (0 and 0 when the
	// echoes of overlayd's own writes are recognised).
	DumpsDuring        float64 `json:"dumps_during"`
	EventChangesDuring float64 `json:"event_changes_during"`
	// Writes made during the idle passes (should be 0).
	Writes float64 `json:"writes"`
	Memory memory  `json:"memory"`
	// Dumps: the kernel reads alone, timed by the harness.
	Dumps dumpResult `json:"dumps"`
}

// idlePoll is how often the idle phase scrapes the metrics.
const idlePoll = 50 * time.Millisecond

// measureIdle times each periodic full pass from the pass-duration
// histogram: between two scrapes that saw exactly one more full pass and
// no other pass, the histogram's sum grew by that pass's duration.
func (b *bench) measureIdle(ctx context.Context) (idleResult, error) {
	res := idleResult{ResyncInterval: b.s.resync.String()}
	timeout := time.Duration(b.s.idlePasses+2)*b.s.resync*12/10 + 10*time.Second
	pctx, cancel := b.d.phase(ctx, timeout)
	defer cancel()
	first, err := scrapeMetrics(pctx, b.node.NS)
	if err != nil {
		return res, b.d.explain(err)
	}
	err = b.watchSync(pctx, idlePoll, first.sync(), func() bool { return len(res.PassesMs) >= b.s.idlePasses }, func(first, prev, cur syncView) {
		if cur.fullPasses == prev.fullPasses+1 && cur.incrPasses == prev.incrPasses && cur.passesTimed == prev.passesTimed+1 {
			ms := (cur.passSeconds - prev.passSeconds) * 1000
			if cur.dumps == prev.dumps {
				res.PassesMs = append(res.PassesMs, ms)
			} else {
				res.DumpPassesMs = append(res.DumpPassesMs, ms)
			}
		}
		res.Writes = cur.writes - first.writes
		res.DumpsDuring = cur.dumps - first.dumps
		res.EventChangesDuring = cur.eventChanges - first.eventChanges
	}, func(syncView) string {
		return fmt.Sprintf("idle passes: %d of %d seen", len(res.PassesMs), b.s.idlePasses)
	})
	if err != nil {
		return res, err
	}
	res.MedianMs, res.MaxMs = medianMax(res.PassesMs)
	if res.Memory, err = b.d.readMemory(); err != nil {
		return res, err
	}
	m, err := scrapeMetrics(pctx, b.node.NS)
	if err != nil {
		return res, b.d.explain(err)
	}
	res.Memory.addRuntime(m)
	res.Dumps, err = b.timeDumps()
	return res, err
}

func medianMax(v []float64) (median, maximum float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2], s[len(s)-1]
}
