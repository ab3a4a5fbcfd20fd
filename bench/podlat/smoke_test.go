package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

func requireLab(t *testing.T) {
	t.Helper()
	netnsutil.RequireRoot(t)
	if _, err := etcdtest.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

func smokeConfig(t *testing.T, args ...string) config {
	t.Helper()
	base := []string{"-nodes", "2", "-pods", "2", "-count", "100", "-warmup", "20", "-duration", "1s",
		"-out", t.TempDir(), "-overlayd", testOverlayd(t), "-agent", "overlayd"}
	c, err := parseFlags(append(base, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// built is the overlayd binary the tests share, built on first use and
// removed by TestMain.
var built struct {
	sync.Once
	dir, bin string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// testOverlayd builds ./cmd/overlayd once per test binary.
func testOverlayd(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		root, err := moduleRoot(context.Background())
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "podlat-test-"); err != nil {
			built.err = err
			return
		}
		built.bin, built.err = buildOverlayd(context.Background(), root, built.dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// TestSmoke runs the whole bench on the smallest cluster and checks the
// four report files and the three paths in each.
func TestSmoke(t *testing.T) {
	requireLab(t)
	c := smokeConfig(t)
	before := netnsutil.MineT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout strings.Builder
	if err := run(ctx, c, &stdout, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	checkNamespacesGone(t, before)

	md := readFile(t, filepath.Join(c.out, report.MarkdownFile))
	for _, want := range []string{"| overlayd | same-node | tcp |", "| overlayd | cross-node | udp |", "| overlayd | underlay | tcp |",
		"Overlay overhead over the underlay", "Throughput per path"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(stdout.String(), "cross-node") {
		t.Errorf("stdout lacks the report:\n%s", stdout.String())
	}
	checkJSON(t, filepath.Join(c.out, report.JSONFile))
	csv := readFile(t, filepath.Join(c.out, report.CSVFile))
	if rows := strings.Count(csv, "\n"); rows != 1+3*2*100 {
		t.Errorf("rtt.csv has %d lines, want a header and 600 round trips", rows)
	}
	svg := readFile(t, filepath.Join(c.out, report.ChartFile))
	labtest.CheckWellFormedXML(t, "latency.svg", svg)
	for _, id := range report.PathIDs() {
		if !strings.Contains(svg, "overlayd · "+id) {
			t.Errorf("latency.svg has no line for %s", id)
		}
	}
	if _, err := os.Stat(filepath.Join(c.out, "logs", "overlayd", "node0", "agent.log")); err != nil {
		t.Errorf("agent log not kept: %v", err)
	}
}

func checkJSON(t *testing.T, path string) {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(readFile(t, path)), &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(r.Agents) != 1 || len(r.Agents[0].Paths) != 3 || r.Agents[0].Error != "" {
		t.Fatalf("report.json agents = %+v, want overlayd with three paths", r.Agents)
	}
	for _, p := range r.Agents[0].Paths {
		if len(p.Latency) != 2 || p.Latency[0].Count != 100 || p.Latency[0].P50US <= 0 || p.Throughput == nil || p.Throughput.BitsPerSecond <= 0 {
			t.Errorf("path %s: %+v", p.ID, p)
		}
	}
	if r.Machine.CPUs < 1 || r.Machine.Kernel == "" || !strings.HasPrefix(r.Command, "go run ./bench/podlat ") {
		t.Errorf("machine %+v, command %q", r.Machine, r.Command)
	}
}

// TestInterruptCleansUp cancels the run as soon as it starts measuring,
// as SIGINT would, and checks that nothing is left and that the partial
// report says why it stopped.
func TestInterruptCleansUp(t *testing.T) {
	requireLab(t)
	c := smokeConfig(t, "-throughput", "off", "-count", "1000000")
	before := netnsutil.MineT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(cancelOn{"measuring latency", cancel}, nil))
	err := run(ctx, c, io.Discard, log)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	checkNamespacesGone(t, before)
	var r report.Report
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(c.out, report.JSONFile))), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Agents) != 1 || !strings.Contains(r.Agents[0].Error, "canceled") {
		t.Fatalf("partial report agents = %+v, want the interruption recorded", r.Agents)
	}
}

// cancelOn is a log writer that cancels when a line contains msg.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.msg) {
		c.cancel()
	}
	return len(p), nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func checkNamespacesGone(t *testing.T, before []string) {
	t.Helper()
	if after := netnsutil.MineT(t); len(after) != len(before) {
		t.Errorf("namespaces left behind: before %v, after %v", before, after)
	}
}
