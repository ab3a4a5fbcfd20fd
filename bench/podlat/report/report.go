// Package report holds the results of a pod latency run and writes them
// as Markdown (report.md), JSON (report.json), every round trip as CSV
// (rtt.csv) and a hand-drawn SVG chart of the latency distribution per
// path (latency.svg).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/bench/podlat/stream"
)

// Path identifiers, in report order.
const (
	PathSameNode  = "same-node"
	PathCrossNode = "cross-node"
	PathUnderlay  = "underlay"
)

// PathIDs lists the paths in report order.
func PathIDs() []string { return []string{PathSameNode, PathCrossNode, PathUnderlay} }

// PathTitle says in words what a path crosses.
func PathTitle(id string) string {
	switch id {
	case PathSameNode:
		return "pod → pod, same node (cni0 bridge)"
	case PathCrossNode:
		return "pod → pod, across nodes (overlay)"
	case PathUnderlay:
		return "node → node (underlay baseline)"
	}
	return id
}

// Report is one run: every agent, every path.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Command reproduces the run.
	Command string  `json:"command"`
	Machine Machine `json:"machine"`
	Params  Params  `json:"params"`
	Agents  []Agent `json:"agents"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Iperf3   string `json:"iperf3,omitempty"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute load at the start:
	// other work on the machine shows in the tails.
	LoadAvg string `json:"load_avg,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Nodes             int     `json:"nodes"`
	PodsPerNode       int     `json:"pods_per_node"`
	Topology          string  `json:"topology"`
	RoundTrips        int     `json:"round_trips"`
	Warmup            int     `json:"warmup"`
	PayloadBytes      int     `json:"payload_bytes"`
	ThroughputSeconds float64 `json:"throughput_seconds"`
	ThroughputTool    string  `json:"throughput_tool"` // "" when skipped
}

// Agent is one agent's lab and measurements.
type Agent struct {
	Name     string `json:"name"`
	Template string `json:"template"`
	Paths    []Path `json:"paths"`
	// Error is why the agent's run stopped early ("" when it completed).
	Error string `json:"error,omitempty"`
}

// Path is one measured path.
type Path struct {
	ID         string      `json:"id"`
	From       string      `json:"from"`
	To         string      `json:"to"`
	Latency    []Latency   `json:"latency"`
	Throughput *Throughput `json:"throughput,omitempty"`
}

// Latency summarises the round trips of one protocol, in microseconds.
type Latency struct {
	Protocol string  `json:"protocol"`
	Count    int     `json:"count"`
	Lost     int     `json:"lost"`
	MinUS    float64 `json:"min_us"`
	MeanUS   float64 `json:"mean_us"`
	P50US    float64 `json:"p50_us"`
	P90US    float64 `json:"p90_us"`
	P99US    float64 `json:"p99_us"`
	P999US   float64 `json:"p99_9_us"`
	MaxUS    float64 `json:"max_us"`
	// RTTs are the round trips in order (rtt.csv, the chart).
	RTTs []time.Duration `json:"-"`
}

// Throughput is one stream's goodput.
type Throughput struct {
	Tool          string  `json:"tool"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	Retransmits   int     `json:"retransmits"` // -1: unknown
}

// LatencyOf converts a measurement.
func LatencyOf(r rtt.Result) Latency {
	s := r.Summary()
	return Latency{
		Protocol: string(r.Protocol),
		Count:    s.Count,
		Lost:     s.Lost,
		MinUS:    us(s.Min),
		MeanUS:   us(s.Mean),
		P50US:    us(s.P50),
		P90US:    us(s.P90),
		P99US:    us(s.P99),
		P999US:   us(s.P999),
		MaxUS:    us(s.Max),
		RTTs:     r.RTTs,
	}
}

// ThroughputOf converts a measurement.
func ThroughputOf(r stream.Result) *Throughput {
	return &Throughput{
		Tool:          r.Tool,
		BitsPerSecond: r.BitsPerSecond,
		Bytes:         r.Bytes,
		Seconds:       r.Duration.Seconds(),
		Retransmits:   r.Retransmits,
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Path returns the agent's path with that id, or nil.
func (a Agent) Path(id string) *Path {
	for i := range a.Paths {
		if a.Paths[i].ID == id {
			return &a.Paths[i]
		}
	}
	return nil
}

// ByProtocol returns the path's latency for a protocol, or nil.
func (p *Path) ByProtocol(protocol string) *Latency {
	if p == nil {
		return nil
	}
	for i := range p.Latency {
		if p.Latency[i].Protocol == protocol {
			return &p.Latency[i]
		}
	}
	return nil
}

// Files written by WriteDir.
const (
	MarkdownFile = "report.md"
	JSONFile     = "report.json"
	CSVFile      = "rtt.csv"
	ChartFile    = "latency.svg"
)

// WriteDir writes the four report files into dir (created if needed) and
// returns their paths.
func WriteDir(dir string, r Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	writers := []struct {
		name  string
		write func(io.Writer, Report) error
	}{
		{MarkdownFile, func(w io.Writer, r Report) error { return WriteMarkdown(w, r, 1) }},
		{JSONFile, WriteJSON},
		{CSVFile, WriteCSV},
		{ChartFile, WriteSVG},
	}
	var paths []string
	for _, wr := range writers {
		path := filepath.Join(dir, wr.name)
		if err := writeFile(path, r, wr.write); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func writeFile(path string, r Report, write func(io.Writer, Report) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := write(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteJSON writes the report, indented, without the raw round trips.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
