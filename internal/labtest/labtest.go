// Package labtest holds the helpers the integration suites under test/
// share on top of internal/lab: bounded contexts, polling, waiting for a
// node to come up or its agent to exit, the lab's etcd client, and reading
// a node's metrics, /status, lease and log.
package labtest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/statusdoc"
)

// MetricsURL is overlayd's default --metrics-addr, inside a node's
// namespace: /metrics and /status are served there.
const MetricsURL = "http://127.0.0.1:9473"

// Context is t.Context() bounded by d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// Eventually calls check every 100ms until it returns nil, and fails the
// test with check's last error once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll(timeout, 100*time.Millisecond, check); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// WaitFor calls cond every 200ms until it holds, and fails the test with
// cond's last description of the state once timeout has passed.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var state string
	err := poll(timeout, 200*time.Millisecond, func() error {
		ok, s := cond()
		if state = s; !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after %s, still not %s; last state:\n%s", timeout, what, state)
	}
}

// poll calls check every interval until it returns nil or timeout passes.
func poll(timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// WaitUp waits up to timeout for n's /readyz, then reads its subnet file.
// Ready first: the file an earlier agent left must not count.
func WaitUp(t testing.TB, l *lab.Lab, n *lab.Node, timeout time.Duration) lab.SubnetEnv {
	t.Helper()
	ctx := Context(t, timeout)
	if err := l.WaitReady(ctx, n); err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	env, err := l.WaitSubnetFile(ctx, n)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return env
}

// Metrics scrapes n's /metrics: each series as exposed ("name{labels}")
// to its value.
func Metrics(ctx context.Context, n *lab.Node) (map[string]float64, error) {
	code, body, err := lab.GetIn(ctx, n.NS, MetricsURL+"/metrics")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: status %d, %v", n.Name, code, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// MetricValue is one series of n's /metrics, e.g.
// `overlayd_sync_writes_total{entry="fdb",op="add"}`.
func MetricValue(ctx context.Context, n *lab.Node, series string) (float64, error) {
	m, err := Metrics(ctx, n)
	if err != nil {
		return 0, err
	}
	v, ok := m[series]
	if !ok {
		return 0, fmt.Errorf("%s /metrics has no series %s", n.Name, series)
	}
	return v, nil
}

// Metric is MetricValue that fails the test on an error.
func Metric(t testing.TB, n *lab.Node, series string) float64 {
	t.Helper()
	v, err := MetricValue(Context(t, 5*time.Second), n, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Status reads n's /status document.
func Status(ctx context.Context, n *lab.Node) (statusdoc.Doc, error) {
	var doc statusdoc.Doc
	code, body, err := lab.GetIn(ctx, n.NS, MetricsURL+"/status")
	if err != nil || code != http.StatusOK {
		return doc, fmt.Errorf("%s /status: status %d, %v\n%s", n.Name, code, err, body)
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return doc, fmt.Errorf("%s /status is not the expected JSON: %w\n%s", n.Name, err, body)
	}
	return doc, nil
}

// MustStatus is Status that fails the test on an error.
func MustStatus(t testing.TB, n *lab.Node) statusdoc.Doc {
	t.Helper()
	doc, err := Status(Context(t, 5*time.Second), n)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// MustDeviceState is l.DeviceState that fails the test on an error.
func MustDeviceState(t testing.TB, ctx context.Context, l *lab.Lab, n *lab.Node, dev string) lab.DeviceState {
	t.Helper()
	st, err := l.DeviceState(ctx, n, dev)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// LogContains returns nil when a line of the agent's log (the whole file:
// every agent started on the node appends to it) has all of words.
func LogContains(a *lab.Agent, words ...string) error {
	data, err := os.ReadFile(a.LogPath)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if containsAll(line, words) {
			return nil
		}
	}
	return fmt.Errorf("no log line of %s contains all of %q", a.Node.Name, words)
}

// LogInOrder returns nil when the agent's log has, in this order, a line
// with every part of each step.
func LogInOrder(a *lab.Agent, steps ...[]string) error {
	data, err := os.ReadFile(a.LogPath)
	if err != nil {
		return err
	}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		if found < len(steps) && containsAll(line, steps[found]) {
			found++
		}
	}
	if found == len(steps) {
		return nil
	}
	return fmt.Errorf("the log of %s has no line with all of %q after lines with %q", a.Node.Name, steps[found], steps[:found])
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// NewLab is lab.NewT with config ("": the lab's own, l.ConfigJSON())
// written as the network config.
func NewLab(t testing.TB, opts lab.Options, config string) *lab.Lab {
	t.Helper()
	l := lab.NewT(t, opts)
	if config == "" {
		config = l.ConfigJSON()
	}
	if err := l.WriteConfig(Context(t, 30*time.Second), config); err != nil {
		t.Fatalf("write the network config: %v", err)
	}
	return l
}

// PingAll fails the test unless every pod of l reaches every other within
// timeout, in at most attempts rounds pause apart; when says at what
// point of the test.
func PingAll(t testing.TB, l *lab.Lab, when string, timeout time.Duration, attempts int, pause time.Duration) {
	t.Helper()
	m, err := l.PingAllRetry(Context(t, timeout), attempts, pause)
	if err != nil {
		t.Fatalf("%s: pods cannot reach each other: %v\n%s", when, err, m)
	}
}

// CheckWellFormedXML fails the test unless doc (what, e.g. "latency.svg")
// is well-formed XML.
func CheckWellFormedXML(t testing.TB, what, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", what, err)
		}
	}
}
