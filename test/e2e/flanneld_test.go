package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// agentKind names which daemon runs on a node in a mixed cluster.
type agentKind string

const (
	kindOverlayd agentKind = "overlayd"
	kindFlanneld agentKind = "flanneld"
)

// mixedCluster is a flat lab whose nodes run the real flanneld or
// overlayd, as listed in kinds, each started and up, with pods.
type mixedCluster struct {
	*cluster
	flanneld string // the real flanneld binary
}

func startMixedCluster(t *testing.T, pods int, kinds ...agentKind) *mixedCluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	l := lab.NewT(t, lab.Options{Nodes: len(kinds), PodsPerNode: pods})
	c := &mixedCluster{cluster: &cluster{Lab: l, t: t, store: v3Store{l}}, flanneld: bin}
	ctx := labtest.Context(t, 60*time.Second)
	if err := l.WriteConfig(ctx, testConfig); err != nil {
		t.Fatal(err)
	}
	for i, n := range l.Nodes {
		c.startKind(n, kinds[i])
	}
	for _, n := range l.Nodes {
		c.waitUp(n)
		if pods > 0 {
			if err := l.AddPods(ctx, n); err != nil {
				t.Fatalf("add pods on %s: %v", n.Name, err)
			}
		}
	}
	return c
}

func (c *mixedCluster) startKind(n *lab.Node, kind agentKind) *lab.Agent {
	c.t.Helper()
	if kind == kindOverlayd {
		return c.start(n)
	}
	a, err := c.StartFlanneld(context.Background(), n, c.flanneld)
	if err != nil {
		c.t.Fatalf("%s: %v", n.Name, err)
	}
	return a
}

// TestMixedClusterWithRunningFlanneld: a real flanneld v0.28 node between
// two overlayd nodes. Every pod reaches every other pod, and pod-to-pod
// packets between the flanneld node and the overlayd nodes keep the
// source pod's address in both directions (no SNAT inside the pod
// network, on either daemon's rules).
func TestMixedClusterWithRunningFlanneld(t *testing.T) {
	c := startMixedCluster(t, 1, kindFlanneld, kindOverlayd, kindOverlayd)
	c.mustPingAll()
	flan := c.Nodes[0].Pods[0]
	for _, other := range []*lab.Pod{c.Nodes[1].Pods[0], c.Nodes[2].Pods[0]} {
		for _, pair := range [][2]*lab.Pod{{flan, other}, {other, flan}} {
			from, to := pair[0], pair[1]
			if got := udpSourceSeen(t, from.NS, to.NS, to.IP); got != from.IP {
				t.Errorf("pod %s -> pod %s arrived from %s, want the pod's own address %s (no SNAT inside the pod network)", from, to, got, from.IP)
			}
		}
	}
}
