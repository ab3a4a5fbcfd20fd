package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/overlayd/overlayd/bench/internal/routebench"
)

// report is the JSON document written to <out>/syncbench.json.
type report struct {
	Command  string              `json:"command"`
	Machine  machine             `json:"machine"`
	Settings reportSettings      `json:"settings"`
	Runs     []runResult         `json:"runs"`
	Routes   []routebench.Result `json:"route_installs,omitempty"`
	Targets  []verdict           `json:"targets,omitempty"`
}

type reportSettings struct {
	Events         int      `json:"events"`
	SteadyResync   string   `json:"steady_resync_interval"`
	IdleResync     string   `json:"idle_resync_interval"`
	IdlePasses     int      `json:"idle_passes"`
	Network        string   `json:"network"`
	SubnetLen      int      `json:"subnet_len"`
	RouteBenchOnly bool     `json:"route_bench_only,omitempty"`
	DaemonEnv      []string `json:"daemon_env,omitempty"`
	RouteMode      string   `json:"route_mode,omitempty"`
	// IPv6: dual-stack peers (-ipv6): 6N entries, the kernel limit of all
	// six kinds, both planes converged.
	IPv6 bool `json:"ipv6,omitempty"`
	// Tree is `git describe --always --dirty` of the checkout; BinaryMiB
	// the size of the overlayd binary measured.
	Tree      string  `json:"tree,omitempty"`
	BinaryMiB float64 `json:"overlayd_binary_mib,omitempty"`
}

// verdict is one of the targets, met or missed.
type verdict struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}

// targetN is where the issue sets the cold and idle targets.
const targetN = 10000

func judge(runs []runResult) []verdict {
	var out []verdict
	worstP99, worstWrites, worstRSS := 0.0, 0.0, 0.0
	for _, r := range runs {
		worstP99 = max(worstP99, r.Events.AddP99Ms)
		worstWrites = max(worstWrites, r.Warm.Writes)
		worstRSS = max(worstRSS, r.Idle.Memory.RSSMiB)
		if r.N != targetN {
			continue
		}
		out = append(out,
			verdict{"cold convergence <= 1.5x the kernel's limit at 10,000 peers", fmt.Sprintf("%.2fx", r.Cold.Ratio), r.Cold.Ratio <= 1.5},
			verdict{"idle full pass < 50 ms at 10,000 peers", fmt.Sprintf("%.1f ms (max of %d)", r.Idle.MaxMs, len(r.Idle.PassesMs)), r.Idle.MaxMs < 50})
	}
	if len(runs) == 0 {
		return out
	}
	return append(out,
		verdict{"event p99 < 5 ms (every N)", fmt.Sprintf("%.2f ms (worst N)", worstP99), worstP99 < 5},
		verdict{"zero kernel writes on warm restart (every N)", fmt.Sprintf("%.0f (worst N)", worstWrites), worstWrites == 0},
		verdict{"RSS < 40 MiB (every N)", fmt.Sprintf("%.1f MiB (worst N)", worstRSS), worstRSS < 40})
}

// writeReport prints the Markdown to w and stores Markdown and JSON in dir.
func writeReport(w io.Writer, dir string, rep report) error {
	md := renderMarkdown(rep)
	fmt.Fprint(w, md)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "syncbench.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "syncbench.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func renderMarkdown(rep report) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "## syncbench %s\n\n", m.Date)
	fmt.Fprintf(&b, "`%s`\n\n", rep.Command)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %d MiB, kernel %s, %s, %s.\n\n", m.CPUs, m.CPUModel, m.MemMiB, m.Kernel, m.Go, m.IPRoute2)
	if len(rep.Runs) > 0 {
		renderRuns(&b, rep)
	}
	if len(rep.Targets) > 0 {
		b.WriteString("\n| target | value | met |\n|---|---|---|\n")
		for _, v := range rep.Targets {
			met := "yes"
			if !v.Met {
				met = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", v.Target, v.Value, met)
		}
	}
	if len(rep.Routes) > 0 {
		renderRoutes(&b, rep.Routes)
	}
	return b.String()
}

// row renders one table row: a label and one cell per run.
type row struct {
	label, target string
	cell          func(r runResult) string
}

func renderRuns(b *strings.Builder, rep report) {
	s := rep.Settings
	fmt.Fprintf(b, "One node in a lab namespace, real etcd, N fake vxlan leases; events: %d; resync %s while cold/events are measured, %s for warm restart and idle.",
		s.Events, s.SteadyResync, s.IdleResync)
	if s.BinaryMiB > 0 {
		fmt.Fprintf(b, " overlayd: tree %s, binary %.0f MiB.", s.Tree, s.BinaryMiB)
	}
	if len(s.DaemonEnv) > 0 {
		fmt.Fprintf(b, " overlayd environment: %s.", strings.Join(s.DaemonEnv, " "))
	}
	if s.IPv6 {
		b.WriteString(" Dual-stack (-ipv6): every peer has an IPv4 and an IPv6 subnet, so 6N entries on flannel.1 and flannel-v6.1;" +
			" the kernel limit times all six kinds (the Go library row: IPv4 only), convergence waits for both reconcilers, writes are both planes'; entry counts are per device.")
	}
	b.WriteString("\n\n")
	b.WriteString("| |")
	for _, r := range rep.Runs {
		fmt.Fprintf(b, " N=%s |", thousands(r.N))
	}
	b.WriteString(" target |\n|---|")
	for range rep.Runs {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, rw := range tableRows() {
		fmt.Fprintf(b, "| %s |", rw.label)
		for _, r := range rep.Runs {
			fmt.Fprintf(b, " %s |", rw.cell(r))
		}
		fmt.Fprintf(b, " %s |\n", rw.target)
	}
}

func tableRows() []row {
	f := func(format string, v ...any) string { return fmt.Sprintf(format, v...) }
	return []row{
		{"kernel limit: ip/bridge -batch, s", "", func(r runResult) string { return skipped(r.Baseline.RouteSeconds, f("%.3f", r.Baseline.TotalSeconds)) }},
		{"&nbsp;&nbsp;neighbours / fdb / routes, s", "", func(r runResult) string {
			return f("%.3f / %.3f / %.3f", r.Baseline.NeighSeconds, r.Baseline.FDBSeconds, r.Baseline.RouteSeconds)
		}},
		{"&nbsp;&nbsp;IPv6 (-ipv6): neighbours / fdb / routes / nexthop routes, s", "", func(r runResult) string {
			v6 := r.Baseline.IPv6
			if v6 == nil {
				return "-"
			}
			return f("%.3f / %.3f / %.3f / %.3f", v6.NeighSeconds, v6.FDBSeconds, v6.RouteSeconds, v6.NexthopRouteSeconds)
		}},
		{"same writes from Go via vishvananda/netlink: s / MiB allocated", "", func(r runResult) string {
			return skipped(r.Baseline.LibrarySeconds, f("%.3f / %.0f", r.Baseline.LibrarySeconds, r.Baseline.LibraryAllocMiB))
		}},
		{"kernel limit with nexthop-object routes, s", "", func(r runResult) string { return f("%.3f", r.Baseline.TotalNexthopSeconds) }},
		{"cold: process start → in sync (3N entries, 6N with -ipv6), s", "", func(r runResult) string { return f("%.3f", r.Cold.FromStartSeconds) }},
		{"cold: subnet file → in sync, s", "", func(r runResult) string { return f("%.3f", r.Cold.FromSubnetFileSeconds) }},
		{"route mode in use (ratios are to that shape's kernel limit)", "", func(r runResult) string { return r.Cold.RouteMode }},
		{"cold: ratio to kernel limit (from start)", "≤ 1.5 at 10k", func(r runResult) string { return f("%.2f", r.Cold.Ratio) }},
		{"cold: ratio to kernel limit (from subnet file)", "", func(r runResult) string { return f("%.2f", r.Cold.RatioFromSubnetFile) }},
		{"event: put → route, p50 / p99 / max, ms", "p99 < 5", func(r runResult) string {
			return f("%.2f / %.2f / %.2f", r.Events.AddP50Ms, r.Events.AddP99Ms, r.Events.AddMaxMs)
		}},
		{"&nbsp;&nbsp;etcd part (put → watch event), p50 / p99, ms", "", func(r runResult) string {
			return f("%.2f / %.2f", r.Events.EtcdP50Ms, r.Events.EtcdP99Ms)
		}},
		{"&nbsp;&nbsp;overlayd part (watch event → route), p50 / p99, ms", "", func(r runResult) string {
			return f("%.2f / %.2f", r.Events.AgentP50Ms, r.Events.AgentP99Ms)
		}},
		{"event: delete → route gone, p50 / p99 / max, ms", "", func(r runResult) string {
			return f("%.2f / %.2f / %.2f", r.Events.DelP50Ms, r.Events.DelP99Ms, r.Events.DelMaxMs)
		}},
		{"warm restart: kernel writes (notifications)", "0", func(r runResult) string {
			return f("%.0f (%d)", r.Warm.Writes, r.Warm.Notifications)
		}},
		{"warm restart: /readyz, s", "", func(r runResult) string { return f("%.3f", r.Warm.ReadySeconds) }},
		{"warm restart: in sync, s", "", func(r runResult) string { return f("%.3f", r.Warm.InSyncSeconds) }},
		{"&nbsp;&nbsp;its one kernel dump (start), ms", "", func(r runResult) string { return f("%.1f", r.Warm.StartDumpMs) }},
		{"cold agent: dumps (after lost notifications)", "1 (0)", func(r runResult) string {
			return f("%.0f (%.0f)", r.Warm.ColdDumps, r.Warm.ColdLostDumps)
		}},
		{"idle periodic pass (no dump): median / max, ms", "≤ 100 at 100k", func(r runResult) string {
			return f("%.1f / %.1f", r.Idle.MedianMs, r.Idle.MaxMs)
		}},
		{"&nbsp;&nbsp;dumps / notifications that changed entries, during idle", "0 / 0", func(r runResult) string {
			return f("%.0f / %.0f", r.Idle.DumpsDuring, r.Idle.EventChangesDuring)
		}},
		{"&nbsp;&nbsp;its 3 kernel dumps alone (harness, same library): ms / MiB allocated", "", func(r runResult) string {
			return f("%.1f / %.1f", r.Idle.Dumps.Ms, r.Idle.Dumps.AllocMiB)
		}},
		{"idle: writes", "0", func(r runResult) string { return f("%.0f", r.Idle.Writes) }},
		{"RSS / peak RSS, MiB", "RSS < 40", func(r runResult) string {
			return f("%.1f / %.1f", r.Idle.Memory.RSSMiB, r.Idle.Memory.PeakRSSMiB)
		}},
		{"&nbsp;&nbsp;RSS anonymous / file-backed, MiB", "", func(r runResult) string {
			return f("%.1f / %.1f", r.Idle.Memory.AnonMiB, r.Idle.Memory.FileMiB)
		}},
		{"&nbsp;&nbsp;Go heap: alloc / next GC / unreleased, MiB", "", func(r runResult) string {
			m := r.Idle.Memory
			return f("%.1f / %.1f / %.1f", m.HeapAllocMiB, m.NextGCMiB, m.HeapUnreleasedMiB)
		}},
		{"&nbsp;&nbsp;reconciler state alone (in-process): MiB (bytes/peer)", "", func(r runResult) string {
			return f("%.1f (%.0f)", r.Footprint.HeapMiB, r.Footprint.BytesPerPeer)
		}},
		{"remove all peers: until none of their entries is left, s", "", func(r runResult) string {
			return skipped(r.RemoveAll.Seconds, f("%.3f", r.RemoveAll.Seconds))
		}},
		{"&nbsp;&nbsp;its writes / passes / longest pass, s", "", func(r runResult) string {
			return skipped(r.RemoveAll.Seconds, f("%.0f / %.0f / %.3f", r.RemoveAll.Writes, r.RemoveAll.Passes, r.RemoveAll.LongestPassSeconds))
		}},
		{"machine load (1-min average at start)", "", func(r runResult) string { return f("%.2f", r.LoadAverage) }},
		{"set-up: N leases into etcd, s", "", func(r runResult) string { return f("%.2f", r.LeaseWriteSeconds) }},
	}
}

func renderRoutes(b *strings.Builder, results []routebench.Result) {
	b.WriteString("\nRoute installs through netlink, one request at a time (fresh namespace each):\n\n")
	b.WriteString("| routes | classic via/onlink: s (routes/s; last 10%) | nexthop objects + nhid: s (routes/s; last 10%) | speed-up | delete flannel.1: classic / nexthop, s |\n")
	b.WriteString("|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		nh := "unsupported"
		speed := "-"
		if r.NexthopSupported {
			nh = fmt.Sprintf("%.3f (%.0f; %.0f)", r.Nexthop.Seconds, r.Nexthop.PerSecond, r.Nexthop.LastTenthPerSecond)
			speed = fmt.Sprintf("%.1fx", r.Classic.Seconds/r.Nexthop.Seconds)
		}
		fmt.Fprintf(b, "| %s | %.3f (%.0f; %.0f) | %s | %s | %.3f / %.3f |\n", thousands(r.Routes),
			r.Classic.Seconds, r.Classic.PerSecond, r.Classic.LastTenthPerSecond, nh, speed,
			r.Classic.TeardownSeconds, r.Nexthop.TeardownSeconds)
	}
}

// thousands formats 10000 as 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// skipped is cell, or "skipped" when the figure was not measured (0).
func skipped(v float64, cell string) string {
	if v == 0 {
		return "skipped"
	}
	return cell
}
