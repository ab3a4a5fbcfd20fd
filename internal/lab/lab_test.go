package lab

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPing(t *testing.T, ctx context.Context, ns string, to netip.Addr) {
	t.Helper()
	if err := PingFrom(ctx, ns, to); err != nil {
		t.Fatalf("from netns %s: %v", ns, err)
	}
}

func TestFlatLabUnderlayEtcdAndClose(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 2, Topology: Flat})
	n0, n1 := l.Nodes[0], l.Nodes[1]
	if got, want := n0.UnderlayIP, netip.MustParseAddr("192.0.2.10"); got != want || n0.PublicIP != want {
		t.Fatalf("node0 underlay/public = %s/%s, want %s", got, n0.PublicIP, want)
	}
	mustPing(t, ctx, n0.NS, n1.UnderlayIP)
	mustPing(t, ctx, n1.NS, n0.UnderlayIP)
	mustPing(t, ctx, n0.NS, l.HubIP)

	link := netnsutil.MustExec(t, n1.NS, "ip", "-o", "addr", "show", "dev", "ul0")
	if !strings.Contains(link, "inet 192.0.2.11/24") {
		t.Errorf("node1 ul0 addresses: %s", link)
	}
	mtu := netnsutil.MustExec(t, n1.NS, "cat", "/sys/class/net/ul0/mtu")
	if strings.TrimSpace(mtu) != "1500" {
		t.Errorf("node1 ul0 mtu = %q, want 1500", mtu)
	}
	fwd := netnsutil.MustExec(t, n1.NS, "sysctl", "-n", "net.ipv4.ip_forward")
	if strings.TrimSpace(fwd) != "1" {
		t.Errorf("node1 ip_forward = %q, want 1", fwd)
	}
	route := netnsutil.MustExec(t, n1.NS, "ip", "route", "show", "default")
	if !strings.Contains(route, "via 192.0.2.254 dev ul0") {
		t.Errorf("node1 default route: %q", route)
	}

	checkEtcdFromNode(t, ctx, l, n1)

	agent, err := l.StartAgent(ctx, n0, []string{"sleep", "600"})
	if err != nil {
		t.Fatal(err)
	}
	namespaces := l.Namespaces()
	if len(namespaces) != 3 {
		t.Fatalf("namespaces = %v, want hub and two nodes", namespaces)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	assertGone(t, namespaces, agent.Pid())
}

// checkEtcdFromNode reaches etcd through the hub proxy from inside the
// node: plain HTTP with a Go client, and gRPC with etcdctl when present.
func checkEtcdFromNode(t *testing.T, ctx context.Context, l *Lab, n *Node) {
	t.Helper()
	status, body, err := GetIn(ctx, n.NS, l.EtcdURL+"/health")
	if err != nil || status != http.StatusOK || !strings.Contains(body, "true") {
		t.Fatalf("etcd /health from %s via %s: status %d body %q err %v", n.Name, l.EtcdURL, status, body, err)
	}
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Logf("etcdctl not installed; gRPC check skipped")
		return
	}
	out := netnsutil.MustExec(t, n.NS, "etcdctl", "--endpoints", l.EtcdURL, "endpoint", "health")
	if !strings.Contains(out, "is healthy") {
		t.Fatalf("etcdctl endpoint health from %s: %s", n.Name, out)
	}
}

func assertGone(t *testing.T, namespaces []string, pids ...int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s still exists after Close", ns)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still alive after Close (kill 0: %v)", pid, err)
		}
	}
}

func TestNATLabReachesPeersByPublicAddress(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 2, Topology: NAT})
	n0, n1 := l.Nodes[0], l.Nodes[1]
	private := netip.MustParseAddr("198.51.100.2")
	if n0.UnderlayIP != private || n1.UnderlayIP != private {
		t.Fatalf("underlay = %s, %s; want %s on both", n0.UnderlayIP, n1.UnderlayIP, private)
	}
	if n0.PublicIP != netip.MustParseAddr("203.0.113.10") || n1.PublicIP != netip.MustParseAddr("203.0.113.11") {
		t.Fatalf("public = %s, %s", n0.PublicIP, n1.PublicIP)
	}
	if n0.Router == "" || n0.Router == n1.Router {
		t.Fatalf("routers %q, %q: want one per node", n0.Router, n1.Router)
	}
	mustPing(t, ctx, n0.NS, n1.PublicIP)
	mustPing(t, ctx, n1.NS, n0.PublicIP)
	if got := seenSource(t, ctx, n0, n1, n1.PublicIP); got != n0.PublicIP {
		t.Errorf("node1 sees node0's connection from %s, want its public %s", got, n0.PublicIP)
	}
	checkEtcdFromNode(t, ctx, l, n0)

	namespaces := l.Namespaces()
	if len(namespaces) != 5 {
		t.Fatalf("namespaces = %v, want hub, two routers, two nodes", namespaces)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertGone(t, namespaces)
}

func TestNATSameSiteSharesRouter(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 3, Topology: NAT, SameSite: [][]int{{0, 1}}})
	n0, n1, n2 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	if n0.Router != n1.Router || n0.Router == n2.Router {
		t.Fatalf("routers %q %q %q: want nodes 0 and 1 together", n0.Router, n1.Router, n2.Router)
	}
	if n1.UnderlayIP != netip.MustParseAddr("198.51.100.3") || n1.PublicIP != netip.MustParseAddr("203.0.113.11") {
		t.Fatalf("node1 = %s / %s", n1.UnderlayIP, n1.PublicIP)
	}
	mustPing(t, ctx, n0.NS, n1.UnderlayIP) // same VPC: private path
	mustPing(t, ctx, n2.NS, n1.PublicIP)
	mustPing(t, ctx, n1.NS, n2.PublicIP)
	if got := seenSource(t, ctx, n0, n1, n1.UnderlayIP); got != n0.UnderlayIP {
		t.Errorf("private path: node1 sees node0 as %s, want %s", got, n0.UnderlayIP)
	}
	if got := seenSource(t, ctx, n0, n1, n1.PublicIP); got != n0.PublicIP {
		t.Errorf("hairpin: node1 sees node0 as %s, want %s", got, n0.PublicIP)
	}
}

// seenSource connects from node `from` to dst on node `to` and returns
// the source address the listener there sees.
func seenSource(t *testing.T, ctx context.Context, from, to *Node, dst netip.Addr) netip.Addr {
	t.Helper()
	got, err := SeenSource(ctx, from.NS, to.NS, dst)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPodsReachGatewayAndNeighbours(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 2, PodsPerNode: 2, Topology: Flat})
	for i, n := range l.Nodes {
		env := SubnetEnv{
			Network: DefaultNetwork(),
			Subnet:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i + 1), 1}), 24),
			MTU:     1450,
			IPMasq:  true,
		}
		if err := n.WriteSubnetFile(env); err != nil {
			t.Fatal(err)
		}
		got, err := l.WaitSubnetFile(ctx, n)
		if err != nil || got != env {
			t.Fatalf("WaitSubnetFile(%s) = %+v, %v; want %+v", n.Name, got, err, env)
		}
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pod := l.Nodes[1].Pods[1]
	if pod.IP != netip.MustParseAddr("10.244.2.3") {
		t.Fatalf("node1 pod1 IP = %s, want 10.244.2.3", pod.IP)
	}
	mtu := netnsutil.MustExec(t, pod.NS, "cat", "/sys/class/net/eth0/mtu")
	if strings.TrimSpace(mtu) != "1450" {
		t.Errorf("pod eth0 mtu = %q, want 1450", mtu)
	}
	for _, n := range l.Nodes {
		for _, p := range n.Pods {
			if err := l.Ping(ctx, p, n.Subnet.Gateway()); err != nil {
				t.Errorf("pod to own gateway: %v", err)
			}
		}
		if err := l.Ping(ctx, n.Pods[0], n.Pods[1].IP); err != nil {
			t.Errorf("pod to pod on one bridge: %v", err)
		}
	}
	// Without an agent there is no route between nodes' pods.
	m, err := l.PingAll(ctx)
	if err == nil || len(m.Failures()) != 8 || len(m.Results) != 12 {
		t.Fatalf("PingAll without overlay: %d of %d failed, err %v; want 8 of 12\n%s", len(m.Failures()), len(m.Results), err, m)
	}
	namespaces := l.Namespaces()
	if len(namespaces) != 7 {
		t.Fatalf("namespaces = %d, want 7 (hub, 2 nodes, 4 pods)", len(namespaces))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, namespaces)
}

func TestAgentLifecycle(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 1, Topology: Flat})
	n := l.Nodes[0]

	t.Run("runs in the node namespace with its own machine id and exits 0 on SIGTERM", func(t *testing.T) {
		script := `trap "exit 0" TERM; ip -o addr show dev ul0; echo "id=$(cat /etc/machine-id)"; while :; do sleep 0.05; done`
		a, err := l.StartAgent(ctx, n, []string{"sh", "-c", script})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Contains(a.LogTail(5), "\nid=") })
		id, err := os.ReadFile(n.MachineIDFile)
		if err != nil {
			t.Fatal(err)
		}
		host, _ := os.ReadFile(hostMachineID)
		if !strings.Contains(a.LogTail(5), "192.0.2.10/24") {
			t.Errorf("agent did not run in the node namespace:\n%s", a.LogTail(5))
		}
		if wantLine := "id=" + strings.TrimSpace(string(id)); !strings.Contains(a.LogTail(5), wantLine) || string(host) == string(id) {
			t.Errorf("agent log lacks %q (host id %q):\n%s", wantLine, host, a.LogTail(5))
		}
		if err := a.Stop(syscall.SIGTERM); err != nil {
			t.Fatalf("Stop: %v\n%s", err, a.LogTail(10))
		}
	})
	t.Run("WaitSubnetFile sees a late file", func(t *testing.T) {
		env := SubnetEnv{Network: DefaultNetwork(), Subnet: netip.MustParsePrefix("10.244.9.1/24"), MTU: 1450}
		script := "sleep 0.2; printf '" + env.String() + "' > " + n.SubnetFile + "; sleep 600"
		a, err := l.StartAgent(ctx, n, []string{"sh", "-c", script})
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.WaitSubnetFile(ctx, n)
		if err != nil || got != env {
			t.Fatalf("WaitSubnetFile = %+v, %v; want %+v", got, err, env)
		}
		a.Kill()
		if !a.Exited() {
			t.Fatal("Kill returned before the agent exited")
		}
	})
	t.Run("WaitSubnetFile fails fast when the agent dies", func(t *testing.T) {
		other := n
		if err := removeFile(other.SubnetFile); err != nil {
			t.Fatal(err)
		}
		_, err := l.StartAgent(ctx, other, []string{"sh", "-c", "echo boom-config-missing; exit 3"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.WaitSubnetFile(ctx, other)
		if err == nil || !strings.Contains(err.Error(), "boom-config-missing") {
			t.Fatalf("WaitSubnetFile error = %v, want the agent's last words", err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSetEtcdReachable(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 1, Topology: Flat})
	n := l.Nodes[0]
	l.SetEtcdReachable(false)
	if status, _, err := GetIn(ctx, n.NS, l.EtcdURL+"/health"); err == nil {
		t.Fatalf("etcd reachable while cut: status %d", status)
	}
	l.SetEtcdReachable(true)
	if status, _, err := GetIn(ctx, n.NS, l.EtcdURL+"/health"); err != nil || status != http.StatusOK {
		t.Fatalf("etcd after restore: status %d, %v", status, err)
	}
	if !slices.Contains(l.Namespaces(), l.Hub) {
		t.Fatalf("hub %s not among the lab's namespaces", l.Hub)
	}
}

func TestNewCleansUpPartialBuild(t *testing.T) {
	netnsutil.RequireRoot(t)
	before := netnsutil.MineT(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the first sysctl fails, after the hub and node0 exist
	_, err := New(ctx, Options{Nodes: 2, Topology: NAT, EtcdEndpoint: "http://127.0.0.1:1", WorkDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context: %v, want context.Canceled from the sysctl step", err)
	}
	if after := netnsutil.MineT(t); !slices.Equal(before, after) {
		t.Fatalf("namespaces left behind by a failed New: before %v, after %v", before, after)
	}
}
