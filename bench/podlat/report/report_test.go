package report

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/internal/labtest"
)

// fakeLatency is a result whose round trips are base, base+1µs, ...
func fakeLatency(proto rtt.Protocol, baseUS, n int) Latency {
	r := rtt.Result{Protocol: proto}
	for i := range n {
		r.RTTs = append(r.RTTs, time.Duration(baseUS+i)*time.Microsecond)
	}
	return LatencyOf(r)
}

func fakePath(id string, baseUS int, gbps float64) Path {
	return Path{
		ID: id, From: "a(10.244.1.2)", To: "b(10.244.2.2)",
		Latency:    []Latency{fakeLatency(rtt.TCP, baseUS, 100), fakeLatency(rtt.UDP, baseUS-2, 100)},
		Throughput: &Throughput{Tool: "iperf3", BitsPerSecond: gbps * 1e9, Retransmits: -1},
	}
}

func fakeReport() Report {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	agent := func(name string, overlayUS int) Agent {
		return Agent{Name: name, Template: "{{.Bin}} --ip-masq", Paths: []Path{
			fakePath(PathSameNode, 8, 20), fakePath(PathCrossNode, overlayUS, 5), fakePath(PathUnderlay, 10, 10),
		}}
	}
	return Report{
		Started: start, Finished: start.Add(42 * time.Second),
		Command: "go run ./bench/podlat -nodes 3",
		Machine: Machine{CPUs: 2, CPUModel: "Test CPU", Kernel: "6.1.0", Go: "go1.26", Iperf3: "iperf 3.12"},
		Params:  Params{Nodes: 3, PodsPerNode: 2, Topology: "flat", RoundTrips: 100, Warmup: 10, PayloadBytes: 64, ThroughputSeconds: 3, ThroughputTool: "iperf3"},
		Agents:  []Agent{agent("overlayd", 15), agent("flanneld<&>", 17), {Name: "broken", Template: "x", Error: "pods do not reach\neach other"}},
	}
}

func TestOverheads(t *testing.T) {
	rows := Overheads(fakeReport())
	if len(rows) != 4 {
		t.Fatalf("Overheads = %d rows, want 2 agents × 2 protocols", len(rows))
	}
	o := rows[0] // overlayd tcp: underlay 10..109 µs, overlay 15..114 µs
	if o.Agent != "overlayd" || o.Protocol != "tcp" || o.P50US() != 5 || o.P99US() != 5 || math.Abs(o.P50Pct()-5/59.0*100) > 1e-9 {
		t.Fatalf("overlayd tcp overhead: %+v (p50 %+v, p99 %+v, pct %v)", o, o.P50US(), o.P99US(), o.P50Pct())
	}
	tr := ThroughputRows(fakeReport())
	if len(tr) != 2 || tr[0].Ratio() != 0.5 {
		t.Fatalf("ThroughputRows = %+v", tr)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	if err := WriteMarkdown(&b, fakeReport(), 2); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Pod latency report\n",
		"### Overlay overhead over the underlay",
		"| overlayd | tcp | 59.0 µs | 64.0 µs | **+5.0 µs (+8%)** | 108.0 µs | 113.0 µs | **+5.0 µs (+5%)** |",
		"| overlayd | 10.00 Gbit/s | 5.00 Gbit/s | 50% |",
		"| flanneld<&> | cross-node | udp | a(10.244.1.2) → b(10.244.2.2) | 64.0 |",
		"- Machine: 2 CPUs, Test CPU; Linux 6.1.0; go1.26; iperf 3.12",
		"- Command: `go run ./bench/podlat -nodes 3`",
		"- broken: pods do not reach each other",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := fakeReport()
	files, err := WriteDir(dir, r)
	if err != nil || len(files) != 4 {
		t.Fatalf("WriteDir = %v, %v", files, err)
	}
	var back Report
	if err := json.Unmarshal(read(t, dir, JSONFile), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Agents) != 3 || back.Agents[0].Paths[1].Latency[0].P50US != 64 || back.Agents[2].Error == "" {
		t.Fatalf("JSON round trip: %+v", back.Agents)
	}
	if bytes.Contains(read(t, dir, JSONFile), []byte("RTTs")) {
		t.Error("report.json carries the raw round trips; they belong in rtt.csv")
	}
	csv := string(read(t, dir, CSVFile))
	if lines := strings.Count(csv, "\n"); lines != 1+2*3*2*100 {
		t.Errorf("rtt.csv: %d lines, want 1201", lines)
	}
	if !strings.Contains(csv, "\noverlayd,cross-node,udp,0,13000\n") {
		t.Errorf("rtt.csv lacks overlayd's first cross-node UDP round trip:\n%.300s", csv)
	}
}

func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSVG(&b, fakeReport()); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	labtest.CheckWellFormedXML(t, "the SVG", svg)
	if n := strings.Count(svg, "<polyline"); n != 12 {
		t.Errorf("svg has %d lines, want 2 protocols × 2 agents × 3 paths", n)
	}
	for _, want := range []string{"TCP round-trip time", "UDP round-trip time", "flanneld&lt;&amp;&gt; · underlay", "99%"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	b.Reset()
	if err := WriteSVG(&b, Report{}); err != nil || !strings.Contains(b.String(), "no round trips") {
		t.Errorf("empty report: %v\n%s", err, b.String())
	}
}

func TestNiceScale(t *testing.T) {
	tests := []struct{ in, above, below float64 }{
		{0.7, 1, 0.5}, {1, 1, 1}, {1.2, 2, 1}, {3, 5, 2}, {7, 10, 5}, {23, 50, 20}, {120, 200, 100}, {0, 1, 1},
	}
	for _, tt := range tests {
		if got := niceAbove(tt.in); math.Abs(got-tt.above) > 1e-9 {
			t.Errorf("niceAbove(%g) = %g, want %g", tt.in, got, tt.above)
		}
		if got := niceBelow(tt.in); math.Abs(got-tt.below) > 1e-9 {
			t.Errorf("niceBelow(%g) = %g, want %g", tt.in, got, tt.below)
		}
	}
	got := niceValues(5, 200)
	want := []float64{5, 10, 20, 50, 100, 200}
	if len(got) != len(want) {
		t.Fatalf("niceValues(5, 200) = %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("niceValues(5, 200) = %v, want %v", got, want)
		}
	}
}

func TestPercentileTicks(t *testing.T) {
	tests := []struct {
		xMax float64
		last string
	}{{1, "90%"}, {math.Log10(300), "99%"}, {math.Log10(2000), "99.9%"}, {4, "99.99%"}}
	for _, tt := range tests {
		ticks := percentileTicks(tt.xMax)
		if got := ticks[len(ticks)-1].label; got != tt.last {
			t.Errorf("percentileTicks(%g) ends at %s, want %s", tt.xMax, got, tt.last)
		}
	}
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
