package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Timeouts: start-up of a node, and reconnection once etcd is back.
const (
	upTimeout        = 45 * time.Second
	reconnectTimeout = 60 * time.Second
)

// cluster is a lab on a real etcd the test controls.
type cluster struct {
	*lab.Lab
	t    *testing.T
	etcd *etcdtest.Server
}

// newCluster starts etcd and a lab of nodes (pods each), and writes the
// network config; it starts no agent. (labtest.StartCluster starts every
// agent at once on an etcd the test cannot stop; these tests start agents
// one by one, with their own flags, and stop etcd.)
func newCluster(t *testing.T, o lab.Options) *cluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	srv := etcdtest.StartT(t, etcdtest.Options{})
	o.EtcdEndpoint, o.CNIPlugin = srv.Endpoint(), overlaydBin
	l := lab.NewT(t, o)
	c := &cluster{Lab: l, t: t, etcd: srv}
	if err := l.WriteConfig(labtest.Context(t, 10*time.Second), l.ConfigJSON()); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs overlayd on n with extra flags; it does not wait.
func (c *cluster) start(n *lab.Node, extra ...string) *lab.Agent {
	c.t.Helper()
	a, err := c.StartAgent(context.Background(), n, lab.OverlaydArgs(overlaydBin, c.Lab, n, extra...))
	if err != nil {
		c.t.Fatalf("start overlayd on %s: %v", n.Name, err)
	}
	return a
}

// startAll starts overlayd on every node with extra flags, waits until
// each is ready and adds the pods.
func (c *cluster) startAll(extra ...string) {
	c.t.Helper()
	for _, n := range c.Nodes {
		c.start(n, extra...)
	}
	for _, n := range c.Nodes {
		labtest.WaitUp(c.t, c.Lab, n, upTimeout)
	}
	for _, n := range c.Nodes {
		if err := c.AddPods(labtest.Context(c.t, 30*time.Second), n); err != nil {
			c.t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
}

// mustPingAll fails unless every pod reaches every other pod (retrying
// for a few seconds while entries converge).
func (c *cluster) mustPingAll(when string) {
	c.t.Helper()
	c.t.Logf("ping all pods %s", when)
	labtest.MustPingAll(c.t, c.Lab)
}

// readyz is n's /readyz status code and body.
func (c *cluster) readyz(n *lab.Node) (int, string, error) {
	return lab.GetIn(labtest.Context(c.t, 10*time.Second), n.NS, n.HealthzURL()+"/readyz")
}

// etcdtestOptions are the options the cluster's etcd runs with.
func etcdtestOptions() etcdtest.Options { return etcdtest.Options{} }
