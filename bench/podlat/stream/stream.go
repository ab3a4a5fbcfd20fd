// Package stream measures TCP throughput between two network namespaces
// over one stream: with iperf3 run inside the namespaces (ip netns exec)
// when it is installed, else with a built-in sender and sink in this
// process.
package stream

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
)

// Tool names what measured the throughput.
const (
	ToolIperf3  = "iperf3"
	ToolBuiltin = "builtin"
)

// Options shape a measurement.
type Options struct {
	// Duration of the transfer (iperf3 rounds it up to whole seconds).
	Duration time.Duration
	// Iperf3 is the iperf3 binary; empty selects the built-in stream.
	Iperf3 string
}

// Result is the goodput seen by the receiver.
type Result struct {
	Tool          string
	BitsPerSecond float64
	Bytes         int64
	Duration      time.Duration
	// Retransmits is the sender's TCP retransmit count (iperf3 only, -1
	// when unknown).
	Retransmits int
}

// FindIperf3 returns the iperf3 binary on PATH, or "" when there is none.
func FindIperf3() string {
	path, err := exec.LookPath("iperf3")
	if err != nil {
		return ""
	}
	return path
}

// Measure sends one TCP stream from from's namespace to to.IP for
// opts.Duration and returns the receiver's rate.
func Measure(ctx context.Context, from, to nsnet.Endpoint, opts Options) (Result, error) {
	if opts.Duration <= 0 {
		return Result{}, fmt.Errorf("stream options: Duration %s, want > 0", opts.Duration)
	}
	var res Result
	var err error
	if opts.Iperf3 != "" {
		res, err = measureIperf3(ctx, from, to, opts)
	} else {
		res, err = measureBuiltin(ctx, from, to, opts.Duration)
	}
	if err != nil {
		return Result{}, fmt.Errorf("throughput %s -> %s: %w", from, to, err)
	}
	return res, nil
}

func rate(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}
