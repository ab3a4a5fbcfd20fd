package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// manifestPath is the kube subnet manager DaemonSet, whose RBAC and
// net-conf.json the agents get here.
const manifestPath = "../../deploy/kubernetes/overlayd-kube-subnet-mgr.yaml"

// apiProxyPort is where the nodes reach the API server: HubIP:6443.
const apiProxyPort = 6443

// prefix is the default annotation prefix.
const prefix = "flannel.alpha.coreos.com/"

// kubeCluster is a lab whose nodes are Nodes of a real API server.
type kubeCluster struct {
	*lab.Lab
	t          *testing.T
	etcd       *etcdtest.Server // the API server's storage
	api        *apiServer
	admin      kubernetes.Interface
	proxy      *lab.TCPProxy
	kubeconfig string // the overlayd service account, through the proxy
	netConf    string // the manifest's net-conf.json
}

// startKubeCluster starts etcd, the API server (apiArgs appended to its
// command line) with the manifest's RBAC applied, and the lab (no agents
// yet).
func startKubeCluster(t *testing.T, opts lab.Options, apiArgs ...string) *kubeCluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	apiServerBinary(t) // skip before building anything
	etcd := etcdtest.StartT(t, etcdtest.Options{})
	api := startAPIServer(t, etcd.Endpoint(), apiArgs...)
	opts.EtcdEndpoint = etcd.Endpoint()
	opts.CNIPlugin = overlaydBin
	l := lab.NewT(t, opts)
	proxy, err := l.Proxy(apiProxyPort, fmt.Sprintf("127.0.0.1:%d", api.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	c := &kubeCluster{Lab: l, t: t, etcd: etcd, api: api, admin: api.adminClient(t), proxy: proxy}
	c.applyManifest()
	c.kubeconfig = api.writeKubeconfig(t, proxy.URL("https"))
	return c
}

// applyManifest creates the manifest's Namespace, ServiceAccount,
// ClusterRole, ClusterRoleBinding and ConfigMap (not the DaemonSet: the
// lab runs the agents), and writes its net-conf.json for the agents.
func (c *kubeCluster) applyManifest() {
	t := c.t
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := labtest.Context(t, 30*time.Second)
	for i, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s document %d: %v", manifestPath, i, err)
		}
		if err := c.create(ctx, obj); err != nil {
			t.Fatalf("create %T from %s: %v", obj, manifestPath, err)
		}
	}
	if c.netConf == "" {
		t.Fatalf("%s has no ConfigMap with net-conf.json", manifestPath)
	}
}

func (c *kubeCluster) create(ctx context.Context, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = c.admin.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ServiceAccount:
		_, err = c.admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRole:
		_, err = c.admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = c.admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ConfigMap:
		if conf, ok := o.Data["net-conf.json"]; ok {
			c.netConf = filepath.Join(c.t.TempDir(), "net-conf.json")
			err = os.WriteFile(c.netConf, []byte(conf), 0o644)
		}
	}
	return err
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// createNode registers a Node as the kubelet and kube-controller-manager
// would leave it: a podCIDR ("" for none) and optional annotations.
func (c *kubeCluster) createNode(name, podCIDR string, annotations map[string]string) {
	c.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if _, err := c.admin.CoreV1().Nodes().Create(labtest.Context(c.t, 10*time.Second), n, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("create node %s: %v", name, err)
	}
}

func (c *kubeCluster) node(name string) *corev1.Node {
	c.t.Helper()
	n, err := c.admin.CoreV1().Nodes().Get(labtest.Context(c.t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

// podCIDR is the lab's usual subnet for node i.
func podCIDR(i int) string { return fmt.Sprintf("10.244.%d.0/24", i+1) }

// agentArgs runs overlayd in kube mode as the DaemonSet does, with the
// node name from env (NODE_NAME=..., or POD_NAME and POD_NAMESPACE).
func (c *kubeCluster) agentArgs(n *lab.Node, env []string, extra ...string) []string {
	args := append([]string{"env"}, env...)
	args = append(args, overlaydBin,
		"--kube-subnet-mgr",
		"--kubeconfig-file="+c.kubeconfig,
		"--net-config-path="+c.netConf,
		"--iface="+n.Iface,
		"--subnet-file="+n.SubnetFile,
		"--ip-masq",
		"--healthz-ip="+n.UnderlayIP.String(),
		"--healthz-port="+strconv.Itoa(lab.HealthzPort),
		"--log-level=debug",
	)
	return append(args, extra...)
}

func (c *kubeCluster) start(n *lab.Node, env []string, extra ...string) *lab.Agent {
	c.t.Helper()
	if env == nil {
		env = []string{"NODE_NAME=" + n.Name}
	}
	return labtest.StartAgent(c.t, c.Lab, n, c.agentArgs(n, env, extra...))
}

func (c *kubeCluster) waitUp(n *lab.Node) lab.SubnetEnv {
	c.t.Helper()
	return labtest.WaitUp(c.t, c.Lab, n, 60*time.Second)
}

func (c *kubeCluster) mustPingAll() {
	c.t.Helper()
	labtest.PingAll(c.t, c.Lab, "ping all", 60*time.Second, 40, 250*time.Millisecond)
}

// deviceMAC is the MAC of flannel.1 in n.
func deviceMAC(t *testing.T, n *lab.Node) string {
	t.Helper()
	return deviceAddr(t, n, lab.FlannelDevice)
}

// deviceAddr is the MAC of dev in n.
func deviceAddr(t *testing.T, n *lab.Node, dev string) string {
	t.Helper()
	out, err := netnsutil.Exec(labtest.Context(t, 10*time.Second), n.NS, "cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		t.Fatalf("MAC of %s on %s: %v", dev, n.Name, err)
	}
	return strings.TrimSpace(out)
}

// hasEntries reports whether n's kernel has the route and FDB entry of a
// peer with subnet (a.b.c.0/24), VTEP mac and public ip.
func (c *kubeCluster) hasEntries(n *lab.Node, subnet, mac, ip string) (bool, error) {
	s, err := c.DeviceState(labtest.Context(c.t, 10*time.Second), n, lab.FlannelDevice)
	if err != nil {
		return false, err
	}
	gw := strings.TrimSuffix(subnet, "/24")
	route := subnet + " via " + gw + " dev " + lab.FlannelDevice
	fdb := mac + " dst " + ip
	hasRoute, hasFDB := false, false
	for _, r := range s.Routes {
		hasRoute = hasRoute || strings.HasPrefix(r, route)
	}
	for _, f := range s.FDB {
		hasFDB = hasFDB || strings.HasPrefix(f, fdb)
	}
	if hasRoute != hasFDB {
		return false, fmt.Errorf("%s: route %q present %v but fdb %q present %v:\n%v\n%v", n.Name, route, hasRoute, fdb, hasFDB, s.Routes, s.FDB)
	}
	return hasRoute, nil
}
