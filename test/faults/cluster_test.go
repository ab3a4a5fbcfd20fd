package faults

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// resyncInterval is the full kernel resync period every agent gets.
const resyncInterval = 2 * time.Second

// Timeouts: start-up of a node, convergence after a fault, and after
// etcd or the underlay comes back (the etcd client's reconnect backoff
// and the watch's, up to 10s, come first).
const (
	upTimeout        = 45 * time.Second
	convergeTimeout  = 15 * time.Second
	reconnectTimeout = 30 * time.Second
)

// cluster is a lab whose etcd the test controls (restart, compaction).
type cluster struct {
	*lab.Lab
	t     *testing.T
	etcd  *etcdtest.Server
	cli   *clientv3.Client // on root loopback, never through the proxy
	extra []string
	fakes int // fake peers made so far (their MACs are numbered)
}

// clusterOptions describe a cluster; zero values are sensible.
type clusterOptions struct {
	nodes, pods int
	// network is the lab's pod network (default 10.244.0.0/16); the
	// config cuts it in /24s.
	network netip.Prefix
	// extra flags for every agent, after --resync-interval.
	extra []string
	// stopped: build the lab and write the config, start no agent.
	stopped bool
}

// meshed is newCluster once every kernel matches etcd and every pod
// reaches every other.
func meshed(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	c := newCluster(t, o)
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
	return c
}

// newCluster starts etcd and the lab, writes the config and (unless
// stopped) starts overlayd on every node, waits until each is ready and
// adds the pods.
func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	srv := etcdtest.StartT(t, etcdtest.Options{})
	l := lab.NewT(t, lab.Options{Nodes: o.nodes, PodsPerNode: o.pods, Network: o.network, EtcdEndpoint: srv.Endpoint(), CNIPlugin: overlaydBin})
	c := &cluster{Lab: l, t: t, etcd: srv, extra: append([]string{"--resync-interval=" + resyncInterval.String()}, o.extra...)}
	c.connect()
	c.startNodes(o)
	return c
}

// startNodes writes the config and (unless o.stopped) starts overlayd on
// every node, waits until each is ready and adds the pods.
func (c *cluster) startNodes(o clusterOptions) {
	c.t.Helper()
	c.writeConfig(c.ConfigJSON())
	if o.stopped {
		return
	}
	for _, n := range c.Nodes {
		c.start(n)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
	}
	if o.pods > 0 {
		for _, n := range c.Nodes {
			if err := c.AddPods(labtest.Context(c.t, 30*time.Second), n); err != nil {
				c.t.Fatalf("add pods on %s: %v", n.Name, err)
			}
		}
	}
}

// connect (re)opens the test's own etcd client on the current endpoint.
func (c *cluster) connect() {
	c.t.Helper()
	if c.cli != nil {
		c.cli.Close()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.etcd.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		c.t.Fatalf("etcd client for %s: %v", c.etcd.Endpoint(), err)
	}
	c.cli = cli
	c.t.Cleanup(func() { cli.Close() })
}

func (c *cluster) writeConfig(config string) {
	c.t.Helper()
	key := subnet.ConfigKey(subnet.DefaultPrefix)
	if _, err := c.cli.Put(labtest.Context(c.t, 10*time.Second), key, config); err != nil {
		c.t.Fatalf("put %s: %v", key, err)
	}
}

// args is the node's overlayd command line with the cluster's flags.
func (c *cluster) args(n *lab.Node, extra ...string) []string {
	return lab.OverlaydArgs(overlaydBin, c.Lab, n, append(append([]string{}, c.extra...), extra...)...)
}

// start runs overlayd on n; it does not wait.
func (c *cluster) start(n *lab.Node, extra ...string) *lab.Agent {
	c.t.Helper()
	return labtest.StartAgent(c.t, c.Lab, n, c.args(n, extra...))
}

// waitUp waits for n's /readyz, then reads its subnet file into n.Subnet.
func (c *cluster) waitUp(n *lab.Node) {
	c.t.Helper()
	labtest.WaitUp(c.t, c.Lab, n, upTimeout)
}

// restart stops n's agent with sig (SIGKILL: no clean-up at all), starts
// a new one and waits until it is ready.
func (c *cluster) restart(n *lab.Node, sig syscall.Signal, extra ...string) *lab.Agent {
	c.t.Helper()
	c.stop(n, sig)
	a := c.start(n, extra...)
	c.waitUp(n)
	return a
}

// stop ends n's agent with sig; SIGTERM must give exit status 0.
func (c *cluster) stop(n *lab.Node, sig syscall.Signal) {
	c.t.Helper()
	a := c.Agent(n)
	if sig == syscall.SIGKILL {
		a.Kill()
		return
	}
	if err := a.Stop(sig); err != nil {
		c.t.Fatalf("stop %s with %v: %v\n%s", n.Name, sig, err, a.LogTail(20))
	}
}

// restartEtcd kills etcd, starts it again on the same data (its port
// changes) and points the lab's proxy and the test's client at it.
func (c *cluster) restartEtcd() {
	c.t.Helper()
	if err := c.etcd.Restart(labtest.Context(c.t, 30*time.Second), etcdtest.Options{}); err != nil {
		c.t.Fatalf("restart etcd: %v", err)
	}
	if err := c.SetEtcdEndpoint(c.etcd.Endpoint()); err != nil {
		c.t.Fatal(err)
	}
	c.connect()
}

// mustPingAll fails unless every pod reaches every other pod (retrying
// for a few seconds while entries converge).
func (c *cluster) mustPingAll() {
	c.t.Helper()
	labtest.PingAll(c.t, c.Lab, "ping all", 30*time.Second, 20, 250*time.Millisecond)
}

// mustPingAllNow fails unless every pod reaches every other pod at the
// first attempt: traffic never stopped.
func (c *cluster) mustPingAllNow(when string) {
	c.t.Helper()
	labtest.PingAll(c.t, c.Lab, when, 10*time.Second, 2, 100*time.Millisecond)
}

// during runs check every 200ms for d and fails at the first error.
func during(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exitedError describes an agent that exited when it should not have.
func exitedError(a *lab.Agent) error {
	return fmt.Errorf("overlayd on %s exited (%v):\n%s", a.Node.Name, a.Wait(), a.LogTail(20))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
