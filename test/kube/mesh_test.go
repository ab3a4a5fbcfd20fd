package kube

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestKubeMesh: three Nodes with podCIDRs, overlayd on each with only the
// manifest's RBAC (node1 finds its node name from its pod); the subnets
// are the podCIDRs, the annotations and the NetworkUnavailable condition
// are flanneld's, pods ping each other; a node that only carries
// flanneld's annotations is programmed and, once deleted from the API
// server, removed from every kernel; a restart with the device gone keeps
// the VTEP MAC from backend-data.
func TestKubeMesh(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 3, PodsPerNode: 2})
	for i, n := range c.Nodes {
		c.createNode(n.Name, podCIDR(i), nil)
	}
	c.createAgentPod("overlayd-node1", "node1")
	for _, n := range c.Nodes {
		var env []string
		if n.Name == "node1" {
			env = []string{"POD_NAME=overlayd-node1", "POD_NAMESPACE=" + agentNamespace}
		}
		c.start(n, env)
	}
	for i, n := range c.Nodes {
		env := c.waitUp(n)
		if got := env.Lease().String(); got != podCIDR(i) {
			t.Errorf("%s: subnet %s, want its podCIDR %s", n.Name, got, podCIDR(i))
		}
		if err := c.AddPods(labtest.Context(t, 30*time.Second), n); err != nil {
			t.Fatal(err)
		}
	}
	c.mustPingAll()
	for _, n := range c.Nodes {
		c.checkAnnotations(n, n.UnderlayIP.String())
	}

	t.Run("the service account can do no more than the manifest grants", func(t *testing.T) {
		agent, err := kubernetes.NewForConfig(c.api.Config(c.api.AgentToken))
		if err != nil {
			t.Fatal(err)
		}
		ctx := labtest.Context(t, 10*time.Second)
		patch := []byte(`{"metadata":{"labels":{"x":"y"}}}`)
		_, errPatch := agent.CoreV1().Nodes().Patch(ctx, "node0", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		_, errSecrets := agent.CoreV1().Secrets(agentNamespace).List(ctx, metav1.ListOptions{})
		errDelete := agent.CoreV1().Nodes().Delete(ctx, "node0", metav1.DeleteOptions{})
		for what, err := range map[string]error{"patch nodes": errPatch, "list secrets": errSecrets, "delete nodes": errDelete} {
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s as the overlayd service account: %v, want Forbidden", what, err)
			}
		}
	})

	t.Run("flanneld node programmed then deleted", func(t *testing.T) {
		added := peer{name: "flannel-node", cidr: "10.244.9.0/24", mac: "0e:00:00:00:00:99", ip: "192.0.2.99"}
		c.createNode(added.name, added.cidr, flannelNode(added.mac, added.ip))
		c.waitPeer(t, c.Nodes, added, true, 20*time.Second)
		c.deleteNode(t, added.name)
		c.waitPeer(t, c.Nodes, added, false, 20*time.Second)
	})

	t.Run("restart keeps the VTEP MAC", func(t *testing.T) {
		n := c.Nodes[0]
		before := deviceMAC(t, n)
		if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if _, err := netnsutil.Exec(labtest.Context(t, 10*time.Second), n.NS, "ip", "link", "del", lab.FlannelDevice); err != nil {
			t.Fatal(err)
		}
		c.start(n, nil)
		if err := c.WaitReady(labtest.Context(t, 60*time.Second), n); err != nil {
			t.Fatal(err)
		}
		if after := deviceMAC(t, n); after != before {
			t.Errorf("VTEP MAC %s after the restart, %s before: backend-data was not reused", after, before)
		}
		c.mustPingAll()
	})

	t.Run("deleted node leaves the other kernels", func(t *testing.T) {
		gone := c.Nodes[2]
		p := peer{name: gone.Name, cidr: podCIDR(2), mac: vtepMAC(t, c.node(gone.Name)), ip: gone.UnderlayIP.String()}
		c.deleteNode(t, gone.Name)
		c.waitPeer(t, c.Nodes[:2], p, false, 20*time.Second)
		// Its agent keeps running and says why it cannot check its node.
		labtest.Eventually(t, 20*time.Second, gone.Name+" logs its missing node", func() error {
			return labtest.LogContains(c.Agent(gone), "node2", "does not exist")
		})
		if c.Agent(gone).Exited() {
			t.Errorf("%s's agent exited when its Node was deleted:\n%s", gone.Name, c.Agent(gone).LogTail(20))
		}
	})
}

// createAgentPod creates the DaemonSet pod of a node, for agents that find
// their node name through POD_NAME and POD_NAMESPACE.
func (c *kubeCluster) createAgentPod(name, nodeName string) {
	c.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: agentNamespace},
		Spec: corev1.PodSpec{
			NodeName: nodeName, ServiceAccountName: agentServiceAccount, HostNetwork: true,
			Containers: []corev1.Container{{Name: "overlayd", Image: "ghcr.io/overlayd/overlayd:test"}},
		},
	}
	if _, err := c.admin.CoreV1().Pods(agentNamespace).Create(labtest.Context(c.t, 10*time.Second), pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("create pod %s: %v", name, err)
	}
}

// checkAnnotations: the node carries flanneld's annotations for our lease,
// with the device's MAC, and NetworkUnavailable=False (FlannelIsUp).
func (c *kubeCluster) checkAnnotations(n *lab.Node, publicIP string) {
	c.t.Helper()
	var node *corev1.Node
	labtest.Eventually(c.t, 20*time.Second, n.Name+" condition", func() error {
		node = c.node(n.Name)
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionFalse && cond.Reason == "FlannelIsUp" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v lack NetworkUnavailable=False reason FlannelIsUp", node.Status.Conditions)
	})
	a := node.Annotations
	want := map[string]string{
		prefix + "kube-subnet-manager": "true",
		prefix + "backend-type":        "vxlan",
		prefix + "public-ip":           publicIP,
		prefix + "backend-data":        `{"VNI":1,"VtepMAC":"` + deviceMAC(c.t, n) + `"}`,
	}
	for k, v := range want {
		if a[k] != v {
			c.t.Errorf("%s: annotation %s = %q, want %q", n.Name, k, a[k], v)
		}
	}
}

func vtepMAC(t *testing.T, n *corev1.Node) string {
	t.Helper()
	var data struct{ VtepMAC string }
	if err := json.Unmarshal([]byte(n.Annotations[prefix+"backend-data"]), &data); err != nil || data.VtepMAC == "" {
		t.Fatalf("node %s backend-data %q: %v", n.Name, n.Annotations[prefix+"backend-data"], err)
	}
	return data.VtepMAC
}
