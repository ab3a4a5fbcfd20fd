// Package benchrun holds what every benchmark command needs around its
// measurements: its main function and the counts on its command line,
// the machine's load when a figure was taken, and waits that end with the
// run's context.
package benchrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main is a benchmark command's main function: parse reads the
// command-line arguments, then measure runs, as root, with a context that
// ends at SIGINT or SIGTERM. An error of either is printed as
// "name: error" and the command exits with status 1.
func Main[C any](name string, parse func(args []string) (C, error), measure func(ctx context.Context, c C) error) {
	if err := mainErr(os.Args[1:], parse, measure); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func mainErr[C any](args []string, parse func([]string) (C, error), measure func(context.Context, C) error) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: the benchmark creates network namespaces")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return measure(ctx, c)
}

// Counts parses s, the comma-separated counts given to the flag name, each
// in 1..most; blank fields are skipped.
func Counts(name, s string, most int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > most {
			return nil, fmt.Errorf("%s: %q is not a count in 1..%d", name, f, most)
		}
		out = append(out, n)
	}
	return out, nil
}

// LoadAverage is the first field of /proc/loadavg (0 if unreadable): the
// machine is shared, and a busy CPU stretches every figure.
func LoadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
