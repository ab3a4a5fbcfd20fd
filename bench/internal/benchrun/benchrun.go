// Package benchrun holds what every benchmark command needs around its
// measurements: the machine's load when a figure was taken, and waits that
// end with the run's context.
package benchrun

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

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
