package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
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
	c.bringUp(labtest.Context(t, 30*time.Second), testConfig, pods > 0)
	return c
}

// bringUp writes config to the cluster's store, starts overlayd on every
// node, waits until each is up and, with addPods, adds each node's pods.
func (c *cluster) bringUp(ctx context.Context, config string, addPods bool) {
	c.t.Helper()
	if err := c.store.putConfig(ctx, config); err != nil {
		c.t.Fatal(err)
	}
	for _, n := range c.Nodes {
		c.start(n)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
	}
	if !addPods {
		return
	}
	for _, n := range c.Nodes {
		if err := c.AddPods(ctx, n); err != nil {
			c.t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
}

func (c *cluster) start(n *lab.Node, extra ...string) *lab.Agent {
	c.t.Helper()
	args := lab.OverlaydArgs(overlaydBin, c.Lab, n, append(append([]string{}, c.extra...), extra...)...)
	return labtest.StartAgent(c.t, c.Lab, n, args)
}

func (c *cluster) waitUp(n *lab.Node) {
	c.t.Helper()
	labtest.WaitUp(c.t, c.Lab, n, 30*time.Second)
}

// mustPingAll fails the test unless every pod reaches every other pod.
func (c *cluster) mustPingAll() {
	c.t.Helper()
	labtest.PingAll(c.t, c.Lab, "ping all", 30*time.Second, 20, 250*time.Millisecond)
}

// waitInSync waits up to 10s for the restarted daemon on n to report
// series (overlayd_sync_in_sync, of one family or all) as 1.
func waitInSync(t *testing.T, n *lab.Node, series string) {
	t.Helper()
	labtest.Eventually(t, 10*time.Second, "restarted daemon in sync", func() error {
		if labtest.Metric(t, n, series) != 1 {
			return fmt.Errorf("%s not 1 yet", series)
		}
		return nil
	})
}

// kernelWrites sums overlayd_sync_writes_total over entries and ops.
func kernelWrites(t *testing.T, n *lab.Node) float64 {
	var total float64
	for _, entry := range []string{"neighbour", "fdb", "route"} {
		for _, op := range []string{"add", "del"} {
			total += labtest.Metric(t, n, fmt.Sprintf(`overlayd_sync_writes_total{entry=%q,op=%q}`, entry, op))
		}
	}
	return total
}

func containsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
