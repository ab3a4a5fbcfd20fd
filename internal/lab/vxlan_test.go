package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestUnderlayCarriesVXLAN programs by hand the kernel state flanneld
// leaves behind (flannel.1, per-peer neighbour, FDB entry and route) and
// checks that every pod reaches every other pod: the lab's underlays,
// NAT included, carry VXLAN as a real network would.
func TestUnderlayCarriesVXLAN(t *testing.T) {
	for _, top := range []Topology{Flat, NAT} {
		t.Run(top.String(), func(t *testing.T) {
			ctx := testCtx(t)
			l := NewT(t, Options{Nodes: 3, PodsPerNode: 1, Topology: top})
			for i, n := range l.Nodes {
				env := SubnetEnv{Network: DefaultNetwork(), Subnet: handSubnet(i, 1), MTU: 1450, IPMasq: true}
				if err := n.WriteSubnetFile(env); err != nil {
					t.Fatal(err)
				}
				if err := l.AddPods(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			for i, n := range l.Nodes {
				programFlannelByHand(t, ctx, l, i, n)
			}
			m, err := l.PingAllRetry(ctx, 3, 0)
			if err != nil {
				t.Fatalf("%v\n%s", err, m)
			}
			s, err := l.DeviceState(ctx, l.Nodes[0], FlannelDevice)
			if err != nil {
				t.Fatal(err)
			}
			wantFDB := fmt.Sprintf("02:00:00:00:00:02 dst %s self permanent", l.Nodes[1].PublicIP)
			if len(s.Routes) != 2 || len(s.Neigh) != 2 || !strings.Contains(strings.Join(s.FDB, "\n"), wantFDB) {
				t.Fatalf("node0 state: %+v, want 2 routes, 2 neighbours and %q", s, wantFDB)
			}
		})
	}
}

// handSubnet is node i's lease 10.244.(i+1).0/24, with the given host.
func handSubnet(i, host int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i + 1), byte(host)}), 24)
}

func programFlannelByHand(t *testing.T, ctx context.Context, l *Lab, i int, n *Node) {
	t.Helper()
	var b, fdb strings.Builder
	fmt.Fprintf(&b, "link add flannel.1 address 02:00:00:00:00:%02x type vxlan id 1 local %s dev ul0 dstport 8472 nolearning\n", i+1, n.UnderlayIP)
	fmt.Fprintf(&b, "link set flannel.1 mtu 1450 up\naddr add %s/32 dev flannel.1\n", handSubnet(i, 0).Addr())
	for j, peer := range l.Nodes {
		if j == i {
			continue
		}
		mac, gw := fmt.Sprintf("02:00:00:00:00:%02x", j+1), handSubnet(j, 0).Addr()
		fmt.Fprintf(&b, "neigh replace %s lladdr %s dev flannel.1 nud permanent\n", gw, mac)
		fmt.Fprintf(&fdb, "fdb replace %s dev flannel.1 dst %s self permanent\n", mac, peer.PublicIP)
		fmt.Fprintf(&b, "route replace %s via %s dev flannel.1 onlink\n", handSubnet(j, 0).Masked(), gw)
	}
	batch(t, ctx, n, "ip", b.String())
	batch(t, ctx, n, "bridge", fdb.String())
}

func batch(t *testing.T, ctx context.Context, n *Node, tool, input string) {
	t.Helper()
	cmd := commandIn(ctx, n.NS, tool, "-batch", "-")
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %s -batch: %v\n%s\ninput:\n%s", n.Name, tool, err, out, input)
	}
}
