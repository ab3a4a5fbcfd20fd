package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/bench/podlat/stream"
)

// setup is what every agent's run shares.
type setup struct {
	bin    string // overlayd for {{.Bin}} ("" when no template uses it)
	outDir string
	tool   string // throughput tool, "" when off
	iperf3 string
	m      measurer
}

// prepare resolves the throughput tool, the report directory and the
// overlayd binary (building it when a template needs it).
func prepare(ctx context.Context, c config, tmp string, started time.Time, log *slog.Logger) (setup, error) {
	var s setup
	var err error
	if s.tool, s.iperf3, err = c.throughputTool(); err != nil {
		return s, err
	}
	var root string
	// overlayd is built even when no template runs it: the lab's pods are
	// made by its CNI plugin (as flannel) whatever the agent.
	if c.out == "" || c.overlayd == "" {
		if root, err = moduleRoot(ctx); err != nil {
			return s, err
		}
	}
	s.outDir = c.out
	if s.outDir == "" {
		s.outDir = filepath.Join(root, "bench", "out", "podlat-"+started.Format("20060102-150405"))
	}
	s.bin = c.overlayd
	if s.bin == "" {
		log.Info("building overlayd", "module", root)
		if s.bin, err = buildOverlayd(ctx, root, tmp); err != nil {
			return s, err
		}
	}
	s.m = measurer{
		rtt: rtt.Options{RoundTrips: c.roundTrips, Warmup: c.warmup, Payload: c.payload, Timeout: c.udpTimeout},
		log: log,
	}
	if s.tool != "" {
		s.m.stream = &stream.Options{Duration: c.duration, Iperf3: s.iperf3}
	}
	return s, nil
}

// throughputTool resolves -throughput to a tool name ("" for off) and
// the iperf3 binary ("" unless the tool is iperf3).
func (c config) throughputTool() (tool, iperf3 string, err error) {
	switch c.throughput {
	case throughputOff:
		return "", "", nil
	case throughputBuiltin:
		return stream.ToolBuiltin, "", nil
	}
	if bin := stream.FindIperf3(); bin != "" {
		return stream.ToolIperf3, bin, nil
	}
	if c.throughput == throughputIperf3 {
		return "", "", errors.New("-throughput iperf3: iperf3 is not installed (apt-get install iperf3, or scripts/deps.sh)")
	}
	return stream.ToolBuiltin, "", nil
}

func (c config) params(tool string) report.Params {
	p := report.Params{
		Nodes: c.nodes, PodsPerNode: c.pods, Topology: "flat",
		RoundTrips: c.roundTrips, Warmup: c.warmup, PayloadBytes: c.payload,
		ThroughputTool: tool,
	}
	if tool != "" {
		p.ThroughputSeconds = c.duration.Seconds()
	}
	return p
}
