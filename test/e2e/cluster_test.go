package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// overlaydBin is built once in TestMain (only as root: the tests need it).
var overlaydBin string

func TestMain(m *testing.M) {
	os.Exit(lab.RunWithOverlayd(m, &overlaydBin))
}

const testConfig = `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`

// cluster is a lab with overlayd running on every node.
type cluster struct {
	*lab.Lab
	t     *testing.T
	extra []string
	store store
}

// startCluster builds a flat lab on etcd's v3 API, writes the config,
// starts overlayd on every node with extra flags, waits for every subnet
// file and adds pods.
func startCluster(t *testing.T, nodes, pods int, extra ...string) *cluster {
	t.Helper()
	return startClusterAPI(t, "v3", nodes, pods, extra...)
}

// startClusterAPI is startCluster on the given etcd API ("v3" or "v2").
func startClusterAPI(t *testing.T, api string, nodes, pods int, extra ...string) *cluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	opts := lab.Options{Nodes: nodes, PodsPerNode: pods, CNIPlugin: overlaydBin}
	if api == "v2" {
		opts.EtcdEndpoint = etcdtest.StartT(t, etcdtest.Options{EnableV2: true}).Endpoint()
		extra = append([]string{"--etcd-api=v2"}, extra...)
	}
	l := lab.NewT(t, opts)
	c := &cluster{Lab: l, t: t, extra: extra, store: v3Store{l}}
	if api == "v2" {
		c.store = v2Store{endpoint: opts.EtcdEndpoint}
	}
	ctx := testContext(t, 30*time.Second)
	if err := c.store.putConfig(ctx, testConfig); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		c.start(n)
	}
	for _, n := range l.Nodes {
		c.waitUp(n)
	}
	if pods > 0 {
		for _, n := range l.Nodes {
			if err := l.AddPods(ctx, n); err != nil {
				t.Fatalf("add pods on %s: %v", n.Name, err)
			}
		}
	}
	return c
}

func (c *cluster) start(n *lab.Node, extra ...string) *lab.Agent {
	c.t.Helper()
	args := lab.OverlaydArgs(overlaydBin, c.Lab, n, append(append([]string{}, c.extra...), extra...)...)
	a, err := c.StartAgent(context.Background(), n, args)
	if err != nil {
		c.t.Fatalf("start overlayd on %s: %v", n.Name, err)
	}
	return a
}

func (c *cluster) waitUp(n *lab.Node) {
	c.t.Helper()
	ctx := testContext(c.t, 30*time.Second)
	if _, err := c.WaitSubnetFile(ctx, n); err != nil {
		c.t.Fatalf("%s: %v", n.Name, err)
	}
	if err := c.WaitReady(ctx, n); err != nil {
		c.t.Fatalf("%s: %v", n.Name, err)
	}
}

// mustPingAll fails the test unless every pod reaches every other pod.
func (c *cluster) mustPingAll() {
	c.t.Helper()
	m, err := c.PingAllRetry(testContext(c.t, 30*time.Second), 20, 250*time.Millisecond)
	if err != nil {
		c.t.Fatalf("ping all: %v\n%s", err, m)
	}
	if err := m.Err(); err != nil {
		c.t.Fatalf("pods cannot reach each other: %v\n%s", err, m)
	}
}

// metric reads one sample of the node's /metrics (the daemon's default
// --metrics-addr inside the node's namespace); labels as in the exposition.
func metric(t *testing.T, n *lab.Node, series string) float64 {
	t.Helper()
	status, body, err := lab.GetIn(testContext(t, 5*time.Second), n.NS, "http://127.0.0.1:9473/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("metrics of %s: status %d, %v", n.Name, status, err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metrics of %s: no series %s", n.Name, series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("metrics of %s: %s = %q", n.Name, series, m[1])
	}
	return v
}

// kernelWrites sums overlayd_sync_writes_total over entries and ops.
func kernelWrites(t *testing.T, n *lab.Node) float64 {
	var total float64
	for _, entry := range []string{"neighbour", "fdb", "route"} {
		for _, op := range []string{"add", "del"} {
			total += metric(t, n, fmt.Sprintf(`overlayd_sync_writes_total{entry=%q,op=%q}`, entry, op))
		}
	}
	return total
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func containsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
