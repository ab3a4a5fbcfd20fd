package publiccloud

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

const (
	// upTimeout bounds a node's start; convergeTimeout a change spreading.
	upTimeout       = 45 * time.Second
	convergeTimeout = 20 * time.Second
)

// startCluster builds the lab, writes the network config, runs overlayd
// (lab.OverlaydArgs plus extra) on every node, waits until each is ready,
// adds the pods and checks that every pod reaches every other.
func startCluster(t *testing.T, opts lab.Options, extra ...string) *lab.Lab {
	t.Helper()
	l := labtest.StartClusterWithin(t, overlaydBin, opts, upTimeout, extra...)
	pingAll(t, l)
	return l
}

func startAgent(t *testing.T, l *lab.Lab, n *lab.Node, extra ...string) *lab.Agent {
	t.Helper()
	return labtest.StartAgent(t, l, n, lab.OverlaydArgs(overlaydBin, l, n, extra...))
}

// pingAll pings every pod from every other, retrying while routes converge.
func pingAll(t *testing.T, l *lab.Lab) {
	t.Helper()
	labtest.PingAll(t, l, "ping all", convergeTimeout, 20, 500*time.Millisecond)
}

func getStatus(t *testing.T, ctx context.Context, n *lab.Node) statusdoc.Doc {
	t.Helper()
	doc, err := labtest.Status(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// fdbDsts maps each permanent FDB entry's MAC on flannel.1 to its dst.
func fdbDsts(t *testing.T, ctx context.Context, n *lab.Node) map[string]string {
	t.Helper()
	out, err := netnsutil.Exec(ctx, n.NS, "bridge", "fdb", "show", "dev", lab.FlannelDevice)
	if err != nil {
		t.Fatal(err)
	}
	dsts := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "dst" {
			dsts[f[0]] = f[2]
		}
	}
	return dsts
}

// rawLease is n's lease value exactly as stored in etcd.
func rawLease(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) []byte {
	t.Helper()
	c := labtest.EtcdClient(t, l)
	key := subnet.LeaseKey(subnet.DefaultPrefix, n.Subnet.Lease())
	resp, err := c.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}
