package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// haMembers is the size of the etcd cluster of the HA tests.
const haMembers = 3

// haCluster is a lab whose nodes use a 3-member etcd cluster with mutual
// TLS, as production runs it: each member in a namespace of its own on
// the hub (a lab host), reached directly by the nodes, every node given
// all three endpoints. The embedded cluster's etcd client goes to every
// member; its etcd field is nil (no single server to restart).
type haCluster struct {
	*cluster
	etcd *etcdtest.Cluster
}

// newHACluster builds the lab without an etcd proxy, three hosts running
// the members, and starts overlayd on every node (see newCluster).
func newHACluster(t *testing.T, o clusterOptions) *haCluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	l := lab.NewT(t, lab.Options{Nodes: o.nodes, PodsPerNode: o.pods, Network: o.network, NoEtcdProxy: true})
	var hosts []etcdtest.MemberHost
	for range haMembers {
		h, err := l.AddHost()
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, etcdtest.MemberHost{NS: h.NS, IP: h.IP})
	}
	logFile, err := os.Create(filepath.Join(l.WorkDir, "etcd.log"))
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	ec := etcdtest.StartClusterT(t, etcdtest.ClusterOptions{Hosts: hosts, Dir: t.TempDir(), Log: logFile})
	cli, err := ec.Client()
	must(t, err)
	t.Cleanup(func() { cli.Close() })
	flags := []string{
		"--resync-interval=" + resyncInterval.String(),
		"--etcd-endpoints=" + strings.Join(ec.Endpoints(), ","),
		"--etcd-cafile=" + ec.PKI.CAFile,
		"--etcd-certfile=" + ec.PKI.ClientCert,
		"--etcd-keyfile=" + ec.PKI.ClientKey,
	}
	c := &haCluster{cluster: &cluster{Lab: l, t: t, cli: cli, extra: append(flags, o.extra...)}, etcd: ec}
	c.startNodes(o)
	return c
}

// leader is the index of the leader member.
func (c *haCluster) leader() int {
	c.t.Helper()
	var i int
	labtest.Eventually(c.t, reconnectTimeout, "an etcd leader", func() error {
		var err error
		i, err = c.etcd.Leader(labtest.Context(c.t, 5*time.Second))
		return err
	})
	return i
}

// restartMember starts killed member i again and waits until the cluster
// serves linearizable reads through every member.
func (c *haCluster) restartMember(i int) {
	c.t.Helper()
	ctx := labtest.Context(c.t, reconnectTimeout)
	if err := c.etcd.Members[i].Restart(ctx); err != nil {
		c.t.Fatal(err)
	}
	if err := c.etcd.WaitHealthy(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// retry runs an etcd write until it succeeds: writes fail while a leader
// is being elected or the member the client picked is down.
func (c *haCluster) retry(what string, op func(ctx context.Context) error) {
	c.t.Helper()
	labtest.Eventually(c.t, reconnectTimeout, what, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return op(ctx)
	})
}

// watchers is the number of watches member i serves (etcd's
// etcd_debugging_mvcc_watcher_total), read from its /metrics.
func (c *haCluster) watchers(i int) (int, error) {
	m := c.etcd.Members[i]
	tlsConfig, err := c.etcd.ClientTLS()
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfig, DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialIn(ctx, m.Host.NS, network, addr)
		},
	}}
	resp, err := client.Get(m.ClientURL() + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", m.Name, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "etcd_debugging_mvcc_watcher_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("metrics of %s: no etcd_debugging_mvcc_watcher_total", m.Name)
}

// watchedMember is the member serving the one node's lease watch.
func (c *haCluster) watchedMember() int {
	c.t.Helper()
	found := -1
	labtest.Eventually(c.t, convergeTimeout, "the member serving the watch", func() error {
		found = -1
		for i := range c.etcd.Members {
			w, err := c.watchers(i)
			if err != nil {
				return err
			}
			if w > 0 && found >= 0 {
				return fmt.Errorf("members %d and %d both serve watches", found, i)
			}
			if w > 0 {
				found = i
			}
		}
		if found < 0 {
			return fmt.Errorf("no member serves a watch")
		}
		return nil
	})
	return found
}

// routeTo reports whether n has a route for sn on flannel.1.
func (c *haCluster) routeTo(n *lab.Node, sn netip.Prefix) (bool, error) {
	s, err := c.kernel(labtest.Context(c.t, 5*time.Second), n)
	if err != nil {
		return false, err
	}
	want := fmt.Sprintf("%s via %s onlink", sn, sn.Addr())
	for _, r := range s.Routes {
		if r == want {
			return true, nil
		}
	}
	return false, nil
}

// waitRoute polls every 50ms until n's route to sn is present (or
// absent) and returns when that was first seen.
func (c *haCluster) waitRoute(n *lab.Node, sn netip.Prefix, present bool, timeout time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		has, err := c.routeTo(n, sn)
		if err == nil && has == present {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: route to %s present=%v not within %s (%v)", n.Name, sn, present, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireOwnLeases fails unless every node's subnet is unchanged from
// want and etcd holds exactly one lease with each node's PublicIP: no
// node took a second subnet, none lost its own.
func (c *haCluster) requireOwnLeases(want map[string]netip.Prefix) {
	c.t.Helper()
	leases := c.mustLeases()
	for _, n := range c.Nodes {
		var held []netip.Prefix
		for sn, l := range leases {
			if l.PublicIP == n.PublicIP {
				held = append(held, sn)
			}
		}
		if len(held) != 1 || held[0] != want[n.Name] {
			c.t.Fatalf("%s holds leases %v, want exactly its subnet %s", n.Name, held, want[n.Name])
		}
		env, err := lab.ReadSubnetEnv(n.SubnetFile)
		must(c.t, err)
		if env.Lease() != want[n.Name] {
			c.t.Fatalf("%s subnet file says %s, want %s", n.Name, env.Lease(), want[n.Name])
		}
	}
}

// subnets is every node's current subnet.
func (c *haCluster) subnets() map[string]netip.Prefix {
	out := map[string]netip.Prefix{}
	for _, n := range c.Nodes {
		out[n.Name] = n.Subnet.Lease()
	}
	return out
}
