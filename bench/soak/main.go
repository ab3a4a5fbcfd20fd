// Command soak runs one overlayd node against a real etcd holding
// thousands of peers under a steady churn (adds, deletes, VTEP MAC
// changes) and records how the daemon holds up: RSS, goroutines and open
// file descriptors every sample interval, reconciler pass-duration
// percentiles, log volume, and at the end the mismatches between the
// kernel and the leases. It writes soak.md, soak.svg and soak.json to -out.
// Needs root (network namespaces) and etcd; see docs/soak.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	peers    int
	rate     float64
	duration time.Duration
	sample   time.Duration
	out      string
	resync   time.Duration
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if err := writeReport(cfg, res); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	fmt.Printf("report in %s: %d mismatches at the end\n", cfg.out, res.Mismatches)
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var c config
	fs.IntVar(&c.peers, "peers", 5000, "fake peers in etcd at the start (kept about constant by the churn)")
	fs.Float64Var(&c.rate, "rate", 50, "churn operations per second (add, delete, MAC change in turn)")
	fs.DurationVar(&c.duration, "duration", 30*time.Minute, "how long the churn runs")
	fs.DurationVar(&c.sample, "sample", 10*time.Second, "sampling interval")
	fs.StringVar(&c.out, "out", "soak-report", "directory for soak.md, soak.svg and soak.json")
	fs.DurationVar(&c.resync, "resync", 30*time.Second, "overlayd --resync-interval")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.peers < 1 || c.peers > 7000:
		return c, fmt.Errorf("-peers %d: want 1..7000", c.peers)
	case c.rate <= 0:
		return c, fmt.Errorf("-rate %v: want > 0", c.rate)
	case c.duration < c.sample || c.sample <= 0:
		return c, fmt.Errorf("-duration %s must be at least -sample %s (> 0)", c.duration, c.sample)
	}
	return c, nil
}
