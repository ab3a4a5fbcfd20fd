package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestCNIChainAddDel makes pods with the real CNI chain (overlayd as the
// flannel plugin, Debian's bridge, host-local, portmap and loopback) and
// releases one with DEL: the delegate configuration flannel's plugin
// saves, host-local's lease, the routes of kube-flannel's conflist, and
// their removal.
func TestCNIChainAddDel(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 1, PodsPerNode: 2, Topology: Flat})
	n := l.Nodes[0]
	env := SubnetEnv{Network: DefaultNetwork(), Subnet: netip.MustParsePrefix("10.244.7.1/24"), MTU: 1450, IPMasq: true}
	if err := n.WriteSubnetFile(env); err != nil {
		t.Fatal(err)
	}
	if err := l.AddPods(ctx, n); err != nil {
		t.Fatal(err)
	}
	p0, p1 := n.Pods[0], n.Pods[1]
	if p0.IP != netip.MustParseAddr("10.244.7.2") || p1.IP != netip.MustParseAddr("10.244.7.3") {
		t.Fatalf("pod IPs %s, %s; want 10.244.7.2, 10.244.7.3 from host-local", p0.IP, p1.IP)
	}
	saved := filepath.Join(n.Dir, "cni", "flannel", p0.NS)
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatalf("flannel plugin state: %v", err)
	}
	for _, want := range []string{`"type":"bridge"`, `"subnet":"10.244.7.0/24"`, `"ipMasq":false`, `"mtu":1450`, `"hairpinMode":true`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("saved delegate configuration lacks %s: %s", want, data)
		}
	}
	lease := filepath.Join(n.Dir, "cni", "networks", cniNetwork, "10.244.7.2")
	if _, err := os.Stat(lease); err != nil {
		t.Errorf("host-local lease: %v", err)
	}
	routes := netnsutil.MustExec(t, p0.NS, "ip", "route", "show")
	for _, want := range []string{"default via 10.244.7.1", "10.244.0.0/16 via 10.244.7.1"} {
		if !strings.Contains(routes, want) {
			t.Errorf("pod routes lack %q:\n%s", want, routes)
		}
	}
	mustPing(t, ctx, p0.NS, p1.IP)

	if err := l.RemovePod(ctx, n, p0); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{saved, lease} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("DEL left %s (%v)", path, err)
		}
	}
	if links := netnsutil.MustExec(t, p0.NS, "ip", "-o", "link", "show"); strings.Contains(links, "eth0") {
		t.Errorf("DEL left the pod's eth0:\n%s", links)
	}
	if len(n.Pods) != 1 || n.Pods[0] != p1 {
		t.Errorf("node pods after DEL: %v", n.Pods)
	}
	mustPing(t, ctx, p1.NS, env.Gateway())
}
