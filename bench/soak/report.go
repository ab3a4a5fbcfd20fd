package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// writeReport writes soak.json, soak.svg and soak.md into cfg.out.
func writeReport(cfg config, res result) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, "soak.json"), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, "soak.svg"), chart(res.Samples), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.out, "soak.md"), markdown(cfg, res), 0o644)
}

// growth is how much the largest value of the second half of the run
// exceeds the value at its start, in percent.
func growth(samples []sample, value func(sample) float64) float64 {
	if len(samples) < 2 {
		return 0
	}
	half := samples[len(samples)/2:]
	base, top := value(half[0]), value(half[0])
	for _, s := range half {
		top = max(top, value(s))
	}
	if base == 0 {
		return 0
	}
	return 100 * (top - base) / base
}

func markdown(cfg config, res result) []byte {
	var b bytes.Buffer
	rss := func(s sample) float64 { return s.RSSMiB }
	gor := func(s sample) float64 { return float64(s.Goroutines) }
	fds := func(s sample) float64 { return float64(s.FDs) }
	fmt.Fprintf(&b, "# overlayd soak: %d peers, %.0f changes/s, %s\n\n", cfg.peers, cfg.rate, cfg.duration)
	fmt.Fprintf(&b, "Run at %s with:\n\n```\ngo run ./bench/soak -peers=%d -rate=%g -duration=%s -sample=%s -resync=%s -out=%s\n```\n\n",
		res.Started.UTC().Format(time.RFC3339), cfg.peers, cfg.rate, cfg.duration, cfg.sample, cfg.resync, cfg.out)
	fmt.Fprintf(&b, "One overlayd node (`--resync-interval=%s`) in a network namespace, a local etcd, %d fake peers loaded "+
		"(programmed in %s), then one change every %s in turn: a peer added, one deleted, one given a new VTEP MAC.\n\n",
		cfg.resync, cfg.peers, res.Converge.Round(time.Millisecond), time.Duration(float64(time.Second)/cfg.rate))
	b.WriteString("| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| changes made (adds / deletes / MAC changes / failed) | %d / %d / %d / %d |\n", res.Ops.Adds, res.Ops.Deletes, res.Ops.MACChanges, res.Ops.Errors)
	fmt.Fprintf(&b, "| kernel-vs-etcd mismatches at the end | %d |\n", res.Mismatches)
	if n := len(res.Samples); n > 0 {
		first, last := res.Samples[0], res.Samples[n-1]
		fmt.Fprintf(&b, "| RSS first / last sample, growth over the second half | %.1f / %.1f MiB, %+.1f%% |\n", first.RSSMiB, last.RSSMiB, growth(res.Samples, rss))
		fmt.Fprintf(&b, "| goroutines first / last, growth over the second half | %d / %d, %+.1f%% |\n", first.Goroutines, last.Goroutines, growth(res.Samples, gor))
		fmt.Fprintf(&b, "| open fds first / last, growth over the second half | %d / %d, %+.1f%% |\n", first.FDs, last.FDs, growth(res.Samples, fds))
	}
	fmt.Fprintf(&b, "| reconciler passes (p50 / p90 / p99, bucket upper bounds) | %.0f passes: ≤%s / ≤%s / ≤%s |\n", res.Passes.Count, secs(res.Passes.P50), secs(res.Passes.P90), secs(res.Passes.P99))
	fmt.Fprintf(&b, "| log lines per minute | %.0f (%d lines) |\n", res.Logs.PerMinute, res.Logs.Lines)
	fmt.Fprintf(&b, "| most repeated message | `%s`: %d times, %.0f per minute |\n\n", res.Logs.TopMessage, res.Logs.TopCount, res.Logs.TopPerMinute)
	if len(res.Examples) > 0 {
		fmt.Fprintf(&b, "Mismatches (first %d):\n\n```\n%s\n```\n\n", len(res.Examples), strings.Join(res.Examples, "\n"))
	}
	b.WriteString("![RSS and goroutines over time](soak.svg)\n\nSamples:\n\n| t | RSS MiB | goroutines | fds |\n|---|---|---|---|\n")
	for _, s := range res.Samples {
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d |\n", s.At.Round(time.Second), s.RSSMiB, s.Goroutines, s.FDs)
	}
	return b.Bytes()
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

// chart draws RSS (MiB, left scale) and goroutines (right scale) over time.
func chart(samples []sample) []byte {
	const w, h, pad = 720, 300, 50
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	if len(samples) == 0 {
		b.WriteString("</svg>\n")
		return b.Bytes()
	}
	end := max(samples[len(samples)-1].At.Seconds(), 1)
	var rssMax, gMax float64
	for _, s := range samples {
		rssMax, gMax = max(rssMax, s.RSSMiB), max(gMax, float64(s.Goroutines))
	}
	rssMax, gMax = rssMax*1.2+1, gMax*1.2+1
	x := func(s sample) float64 { return pad + (w-2*pad)*s.At.Seconds()/end }
	line := func(color string, y func(sample) float64) {
		var pts []string
		for _, s := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s), h-pad-(h-2*pad)*y(s)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", pad, h-pad, w-pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", pad, pad, pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", w-pad, pad, w-pad, h-pad)
	line("#1f77b4", func(s sample) float64 { return s.RSSMiB / rssMax })
	line("#d62728", func(s sample) float64 { return float64(s.Goroutines) / gMax })
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#1f77b4">RSS (MiB, 0–%.0f)</text>`+"\n", pad, pad-10, rssMax)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#d62728" text-anchor="end">goroutines (0–%.0f)</text>`+"\n", w-pad, pad-10, gMax)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time (0–%s)</text>`+"\n", w/2, h-pad+30, time.Duration(end*float64(time.Second)).Round(time.Second))
	b.WriteString("</svg>\n")
	return b.Bytes()
}
