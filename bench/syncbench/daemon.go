package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/internal/lab"
)

// daemon is the overlayd agent of the lab's single node.
type daemon struct {
	lab  *lab.Lab
	node *lab.Node
	bin  string
	env  []string
	// routeMode is passed as --route-mode unless empty.
	routeMode string
	agent     *lab.Agent
	started   time.Time
}

// start runs overlayd on the node with the lab's standard flags and the
// given resync interval, noting the start time.
func (d *daemon) start(ctx context.Context, resync time.Duration) error {
	flags := []string{"--resync-interval=" + resync.String()}
	if d.routeMode != "" {
		flags = append(flags, "--route-mode="+d.routeMode)
	}
	argv := lab.OverlaydArgs(d.bin, d.lab, d.node, flags...)
	if len(d.env) > 0 {
		// env(1) execs overlayd: the process id stays the agent's.
		argv = append(append([]string{"env"}, d.env...), argv...)
	}
	d.started = time.Now()
	a, err := d.lab.StartAgent(ctx, d.node, argv)
	if err != nil {
		return err
	}
	d.agent = a
	return nil
}

// stop sends SIGTERM and waits for the exit.
func (d *daemon) stop() error {
	if err := d.agent.Stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop overlayd: %w", err)
	}
	return nil
}

// phase returns a context that ends after timeout, with ctx, or when the
// agent exits.
func (d *daemon) phase(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	done := d.agent.Done()
	go func() {
		select {
		case <-done:
			cancel()
		case <-pctx.Done():
		}
	}()
	return pctx, cancel
}

// explain adds the agent's exit and log tail to err when it has exited.
func (d *daemon) explain(err error) error {
	if err == nil || d.agent == nil || !d.agent.Exited() {
		return err
	}
	return fmt.Errorf("%w; overlayd exited (%v), log tail:\n%s", err, d.agent.Wait(), d.agent.LogTail(20))
}

// waitReady polls /readyz every poll and returns when it first answered 200.
func (d *daemon) waitReady(ctx context.Context, poll time.Duration) (time.Time, error) {
	url := d.node.HealthzURL() + "/readyz"
	for {
		status, _, err := lab.GetIn(ctx, d.node.NS, url)
		if err == nil && status == http.StatusOK {
			return time.Now(), nil
		}
		if err := benchrun.Sleep(ctx, poll); err != nil {
			return time.Time{}, d.explain(fmt.Errorf("wait for %s: %w", url, err))
		}
	}
}

// waitConverged polls the metrics every poll until the reconciler is in
// sync with n peers and n entries of each kind; it returns when that was
// first seen and the scrape that showed it.
func (d *daemon) waitConverged(ctx context.Context, n int, poll time.Duration) (time.Time, syncView, error) {
	var last syncView
	var lastErr error
	for {
		m, err := scrapeMetrics(ctx, d.node.NS)
		if err == nil {
			last = m.sync()
			if last.converged(n) {
				return time.Now(), last, nil
			}
		}
		lastErr = err
		if err := benchrun.Sleep(ctx, poll); err != nil {
			return time.Time{}, last, d.explain(fmt.Errorf("wait for in_sync with %d peers (last seen %+v, scrape error %v): %w",
				n, last, lastErr, err))
		}
	}
}

// memory is the agent's resident set, now and at its peak, with the Go
// runtime's view of it (from /metrics) to explain the figure.
type memory struct {
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// AnonMiB and FileMiB split RSS into anonymous memory (heap, stacks,
	// runtime) and file-backed pages (the binary's text and data touched).
	AnonMiB float64 `json:"rss_anon_mib"`
	FileMiB float64 `json:"rss_file_mib"`
	// HeapAllocMiB is live plus not yet collected objects; NextGCMiB the
	// heap size that triggers the next collection; HeapUnreleasedMiB free
	// heap pages the runtime has not returned to the OS; GoSysMiB all
	// memory the runtime obtained.
	HeapAllocMiB      float64 `json:"heap_alloc_mib"`
	HeapInuseMiB      float64 `json:"heap_inuse_mib"`
	HeapUnreleasedMiB float64 `json:"heap_unreleased_mib"`
	NextGCMiB         float64 `json:"next_gc_mib"`
	StackMiB          float64 `json:"stack_mib"`
	GoSysMiB          float64 `json:"go_sys_mib"`
}

// addRuntime fills the Go runtime's figures from a scrape.
func (m *memory) addRuntime(s metrics) {
	const mib = 1 << 20
	m.HeapAllocMiB = s["go_memstats_heap_alloc_bytes"] / mib
	m.HeapInuseMiB = s["go_memstats_heap_inuse_bytes"] / mib
	m.HeapUnreleasedMiB = (s["go_memstats_heap_idle_bytes"] - s["go_memstats_heap_released_bytes"]) / mib
	m.NextGCMiB = s["go_memstats_next_gc_bytes"] / mib
	m.StackMiB = s["go_memstats_stack_inuse_bytes"] / mib
	m.GoSysMiB = s["go_memstats_sys_bytes"] / mib
}

// readMemory reads VmRSS, VmHWM, RssAnon and RssFile from /proc/<pid>/status.
func (d *daemon) readMemory() (memory, error) {
	path := fmt.Sprintf("/proc/%d/status", d.agent.Pid())
	f, err := os.Open(path)
	if err != nil {
		return memory{}, fmt.Errorf("overlayd memory: %w", err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		field := map[string]*float64{"VmRSS": &m.RSSMiB, "VmHWM": &m.PeakRSSMiB, "RssAnon": &m.AnonMiB, "RssFile": &m.FileMiB}[key]
		if !ok || field == nil {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return memory{}, fmt.Errorf("%s: %s %q: %w", path, key, val, err)
		}
		*field = kb / 1024
	}
	if m.RSSMiB == 0 {
		return memory{}, fmt.Errorf("%s: no VmRSS (is pid %d overlayd?)", path, d.agent.Pid())
	}
	return m, sc.Err()
}

// waitStamp waits for a kernel watch notification.
func waitStamp(ctx context.Context, ch <-chan time.Time, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case at := <-ch:
		return at, nil
	case <-t.C:
		return time.Time{}, fmt.Errorf("no kernel notification after %s: %w", timeout, errWatchTimeout)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}
