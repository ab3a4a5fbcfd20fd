package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestCNIPortmapHostPort: the chain's portmap plugin is real. A pod's
// hostPort on node0 is reachable from node1 at node0's underlay address
// while the pod exists, and no longer after DEL.
func TestCNIPortmapHostPort(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 2, Topology: Flat})
	n0, n1 := l.Nodes[0], l.Nodes[1]
	env := SubnetEnv{Network: DefaultNetwork(), Subnet: netip.MustParsePrefix("10.244.3.1/24"), MTU: 1450, IPMasq: true}
	if err := n0.WriteSubnetFile(env); err != nil {
		t.Fatal(err)
	}
	const hostPort, podPort = 30080, 8080
	pod, err := l.AddPodWithPorts(ctx, n0, []PortMapping{{HostPort: hostPort, ContainerPort: podPort, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := netnsutil.Do(pod.NS, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", podPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("pod\n"))
			c.Close()
		}
	}()
	target := netip.AddrPortFrom(n0.UnderlayIP, hostPort).String()
	c, err := DialIn(ctx, n1.NS, "tcp", target)
	if err != nil {
		t.Fatalf("hostPort %s from node1: %v", target, err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "pod\n" {
		t.Fatalf("hostPort %s answered %q, want the pod's listener", target, got)
	}

	if err := l.RemovePod(ctx, n0, pod); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := DialIn(short, n1.NS, "tcp", target); err == nil {
		c.Close()
		t.Errorf("hostPort %s still forwarded after DEL", target)
	}
	if rules := netnsutil.MustExec(t, n0.NS, "iptables", "-t", "nat", "-S"); strings.Contains(rules, fmt.Sprintf("--dport %d", hostPort)) {
		t.Errorf("DEL left the hostPort rules:\n%s", rules)
	}
}

// BenchmarkCNIAddDel measures one pod through the real chain: namespace,
// loopback, flannel (overlayd) → bridge + host-local, portmap; then DEL.
// Run with a fixed count, the /24 lease bounds it:
//
//	go test -run XXX -bench CNIAddDel -benchtime 50x ./internal/lab/
func BenchmarkCNIAddDel(b *testing.B) {
	l := NewT(b, Options{Nodes: 1, Topology: Flat})
	n := l.Nodes[0]
	env := SubnetEnv{Network: DefaultNetwork(), Subnet: netip.MustParsePrefix("10.244.9.1/24"), MTU: 1450, IPMasq: true}
	if err := n.WriteSubnetFile(env); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		pod, err := l.AddPodWithPorts(ctx, n, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.RemovePod(ctx, n, pod); err != nil {
			b.Fatal(err)
		}
	}
}
