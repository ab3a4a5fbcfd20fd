package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// metricsURL is overlayd's default --metrics-addr inside the node.
const metricsURL = "http://127.0.0.1:9473/metrics"

// sample is one reading of the daemon.
type sample struct {
	At         time.Duration `json:"at_ns"`
	RSSMiB     float64       `json:"rss_mib"`
	Goroutines int           `json:"goroutines"`
	FDs        int           `json:"fds"`
}

// sampleUntil reads pid's RSS and fds and the daemon's goroutines every
// interval (and once at the start) until ctx ends.
func sampleUntil(ctx context.Context, interval time.Duration, pid int, ns string, start time.Time, log *slog.Logger) []sample {
	var out []sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		s, err := readSample(context.WithoutCancel(ctx), pid, ns)
		if err != nil {
			log.Warn("sample", "err", err)
		} else {
			s.At = time.Since(start)
			out = append(out, s)
			log.Info("sample", "at", s.At.Round(time.Second), "rss_mib", s.RSSMiB, "goroutines", s.Goroutines, "fds", s.FDs)
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

func readSample(ctx context.Context, pid int, ns string) (sample, error) {
	var s sample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			s.RSSMiB = kb / 1024
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	m, err := scrapeMetrics(ctx, ns)
	if err != nil {
		return s, err
	}
	s.Goroutines = int(m["go_goroutines"])
	return s, nil
}

// scrapeMetrics reads the daemon's /metrics: series as exposed to value.
func scrapeMetrics(ctx context.Context, ns string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	code, body, err := lab.GetIn(ctx, ns, metricsURL)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", metricsURL, code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// percentiles of the reconciler's pass duration over the run, as the
// upper bounds of the histogram buckets they fall in.
type percentiles struct {
	Count         float64 `json:"count"`
	P50, P90, P99 float64
}

const passBucket = `overlayd_sync_pass_duration_seconds_bucket{le="`

func passPercentiles(before, after map[string]float64) percentiles {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for series, v := range after {
		le, ok := strings.CutPrefix(series, passBucket)
		if !ok {
			continue
		}
		bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
		if err != nil {
			bound = math.Inf(1)
		}
		bs = append(bs, bucket{bound, v - before[series]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return percentiles{}
	}
	total := bs[len(bs)-1].n
	at := func(q float64) float64 {
		for _, b := range bs {
			if b.n >= q*total {
				return b.le
			}
		}
		return math.Inf(1)
	}
	return percentiles{Count: total, P50: at(0.5), P90: at(0.9), P99: at(0.99)}
}

// logStats is the log volume of the run.
type logStats struct {
	Lines        int     `json:"lines"`
	PerMinute    float64 `json:"per_minute"`
	TopMessage   string  `json:"top_message"`
	TopCount     int     `json:"top_count"`
	TopPerMinute float64 `json:"top_per_minute"`
}

// readLogStats counts the lines written to path after mark and the most
// repeated message (the msg="..." part: the rest names the peer).
func readLogStats(path string, mark int64, d time.Duration) (logStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return logStats{}, err
	}
	defer f.Close()
	if _, err := f.Seek(mark, 0); err != nil {
		return logStats{}, err
	}
	counts := map[string]int{}
	var st logStats
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		st.Lines++
		counts[message(sc.Text())]++
	}
	for msg, n := range counts {
		if n > st.TopCount {
			st.TopMessage, st.TopCount = msg, n
		}
	}
	st.PerMinute = float64(st.Lines) / d.Minutes()
	st.TopPerMinute = float64(st.TopCount) / d.Minutes()
	return st, sc.Err()
}

func message(line string) string {
	i := strings.Index(line, `msg="`)
	if i < 0 {
		if i = strings.Index(line, "msg="); i < 0 {
			return line
		}
		rest := line[i+4:]
		if j := strings.IndexByte(rest, ' '); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	rest := line[i+5:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
