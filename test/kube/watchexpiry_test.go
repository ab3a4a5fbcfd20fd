package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestKubeWatchExpiredRelists: the agents' Node watch expires ("too old
// resource version", HTTP 410 Gone) and their informer must list again.
// kube-apiserver runs without its watch cache, so a watch goes to etcd
// from the resourceVersion asked. The nodes' connections to it are
// refused for a while (client-go then retries the watch from its last
// resourceVersion rather than listing), and meanwhile a peer Node is
// deleted, another created, unrelated ConfigMaps written and etcd
// compacted at its current revision: a watch from any resourceVersion
// the agents hold now gets 410, which the test checks with a watch of
// its own. Once the nodes reach the API server again, every agent
// programs the node created and forgets the node deleted in the gap,
// which only a new list can tell it (the deletion comes from the
// informer's replace), and the watch that follows the list works: a node
// deleted afterwards is forgotten.
func TestKubeWatchExpiredRelists(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 2}, "--watch-cache=false")
	c.bringUp(nil, false)
	gone := peer{name: "gone", cidr: "10.244.7.0/24", mac: "0e:00:00:00:00:97", ip: "192.0.2.97"}
	added := peer{name: "new", cidr: "10.244.8.0/24", mac: "0e:00:00:00:00:98", ip: "192.0.2.97"}
	c.createNode(gone.name, gone.cidr, flannelNode(gone.mac, gone.ip))
	c.waitPeer(t, c.Nodes, gone, true, 30*time.Second)
	seen := c.nodesResourceVersion() // at least what the agents have seen

	if err := c.proxy.SetListening(false); err != nil {
		t.Fatal(err)
	}
	c.deleteNode(t, gone.name)
	c.createNode(added.name, added.cidr, flannelNode(added.mac, added.ip))
	c.writeConfigMaps(10)
	rev := c.compactEtcd()
	c.requireWatchExpired(seen)
	t.Logf("nodes seen at resourceVersion %s; etcd compacted at revision %d", seen, rev)
	if err := c.proxy.SetListening(true); err != nil {
		t.Fatal(err)
	}

	c.waitPeer(t, c.Nodes, added, true, 30*time.Second)
	c.waitPeer(t, c.Nodes, gone, false, 30*time.Second)
	c.deleteNode(t, added.name)
	c.waitPeer(t, c.Nodes, added, false, 30*time.Second)
	labtest.RequireAlive(c.t, c.Lab)
	// overlayd counts no relist (overlayd_kube_api_errors_total does not
	// see a 410 that ends a watch); client-go's debug log shows the path:
	// the watch retried, expired, then a new list.
	for _, n := range c.Nodes {
		if err := labtest.LogInOrder(c.Agent(n),
			[]string{"component=client-go", "Watch failed - backing off", "connection refused"},
			[]string{"component=client-go", "provided watch is too old"},
			[]string{"component=client-go", "Listing and watching"}); err != nil {
			t.Error(err)
		}
	}
}

// nodesResourceVersion is the resourceVersion of a list of the nodes.
func (c *kubeCluster) nodesResourceVersion() string {
	c.t.Helper()
	l, err := c.admin.CoreV1().Nodes().List(labtest.Context(c.t, 10*time.Second), metav1.ListOptions{})
	if err != nil {
		c.t.Fatalf("list nodes: %v", err)
	}
	return l.ResourceVersion
}

// writeConfigMaps creates and deletes n ConfigMaps: writes that move
// etcd's revision on without touching a Node.
func (c *kubeCluster) writeConfigMaps(n int) {
	c.t.Helper()
	ctx := labtest.Context(c.t, 30*time.Second)
	cms := c.admin.CoreV1().ConfigMaps("default")
	for i := range n {
		name := fmt.Sprintf("unrelated-%d", i)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			c.t.Fatalf("create configmap %s: %v", name, err)
		}
		if err := cms.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			c.t.Fatalf("delete configmap %s: %v", name, err)
		}
	}
}

// compactEtcd compacts the API server's etcd at its current revision and
// returns that revision.
func (c *kubeCluster) compactEtcd() int64 {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.etcd.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		c.t.Fatalf("etcd client for %s: %v", c.etcd.Endpoint(), err)
	}
	defer cli.Close()
	ctx := labtest.Context(c.t, 10*time.Second)
	resp, err := cli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		c.t.Fatalf("etcd revision: %v", err)
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("compact etcd at revision %d: %v", rev, err)
	}
	return rev
}

// requireWatchExpired fails unless a Node watch from resourceVersion rv
// ends at once with 410 Gone (reason Expired).
func (c *kubeCluster) requireWatchExpired(rv string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.admin.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return
		}
		c.t.Fatalf("watch nodes from resourceVersion %s: %v", rv, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if ev.Type != watch.Error {
			c.t.Fatalf("watch nodes from resourceVersion %s after the compaction: got a %s event, want 410 Gone", rv, ev.Type)
		}
		err := apierrors.FromObject(ev.Object)
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			c.t.Fatalf("watch nodes from resourceVersion %s: %v, want 410 Gone", rv, err)
		}
		return
	}
	c.t.Fatalf("watch nodes from resourceVersion %s ended without an event, want 410 Gone", rv)
}
