package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/icmpwire"
	"github.com/overlayd/overlayd/internal/errtest"
)

func TestHostAddr6(t *testing.T) {
	for host, want := range map[int]string{10: "2001:db8:ff::10", 11: "2001:db8:ff::11", 254: "2001:db8:ff::254"} {
		if got := hostAddr6(flatHubIP6, host); got.String() != want {
			t.Errorf("hostAddr6(%d) = %s, want %s", host, got, want)
		}
	}
}

func TestParseSubnetEnvIPv6(t *testing.T) {
	tests := []struct {
		name, file, want, wantErr string
	}{
		{name: "dual stack",
			file: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_IPV6_NETWORK=2001:db8:244::/56\nFLANNEL_IPV6_SUBNET=2001:db8:244:5::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n",
			want: "10.244.5.1/24 2001:db8:244:5::1/64 2001:db8:244:5::/64"},
		{name: "IPv6 only",
			file: "FLANNEL_IPV6_NETWORK=2001:db8:244::/56\nFLANNEL_IPV6_SUBNET=2001:db8:244:5::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n",
			want: "invalid Prefix 2001:db8:244:5::1/64 2001:db8:244:5::/64"},
		{name: "IPv4 missing its subnet", file: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_IPV6_NETWORK=2001:db8:244::/56\nFLANNEL_IPV6_SUBNET=2001:db8:244:5::1/64\nFLANNEL_MTU=1430\n",
			wantErr: "FLANNEL_SUBNET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseSubnetEnv([]byte(tt.file))
			if !errtest.Check(t, err, tt.wantErr) {
				return
			}
			if got := fmt.Sprint(env.Subnet, " ", env.IPv6Subnet, " ", env.Lease6()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			again, err := ParseSubnetEnv([]byte(env.String()))
			if err != nil || again != env {
				t.Errorf("String does not round-trip: %v\n%s", err, env)
			}
		})
	}
}

func TestEchoVerdict6(t *testing.T) {
	req := icmpwire.EchoRequest6(7, 1, []byte("x"))
	reply := append([]byte{icmp6EchoReply, 0, 0, 0}, req[4:]...)
	quoted := make([]byte, 40)
	quoted[6] = 58
	unreachable := append(append([]byte{icmp6DestUnreachable, 3, 0, 0, 0, 0, 0, 0}, quoted...), req...)
	other := append([]byte{icmp6EchoReply, 0, 0, 0}, req[4:]...)
	binary.BigEndian.PutUint16(other[4:], 8)
	tests := []struct {
		name    string
		msg     []byte
		ok      bool
		wantErr string
	}{
		{"our reply", reply, true, ""},
		{"someone else's reply", other, false, ""},
		{"our request unreachable", unreachable, false, "ICMPv6 destination unreachable (code 3)"},
		{"short", []byte{129}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := echoVerdict6(tt.msg, 7, 1)
			if ok != tt.ok || (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("echoVerdict6 = %t, %v; want %t, %q", ok, err, tt.ok, tt.wantErr)
			}
		})
	}
}

// TestIPv6OnlyUnderlay: nodes on an IPv6-only underlay reach each other
// and etcd (through the proxy on the hub's IPv6 address); pods of an
// IPv6-only subnet file get IPv6 addresses and reach their gateway.
func TestIPv6OnlyUnderlay(t *testing.T) {
	ctx := testCtx(t)
	l := NewT(t, Options{Nodes: 2, PodsPerNode: 2, Topology: Flat, Underlay6: true, NoUnderlay4: true})
	n0, n1 := l.Nodes[0], l.Nodes[1]
	if n0.UnderlayIP.String() != "2001:db8:ff::10" || n0.PublicIP != n0.UnderlayIP || n0.UnderlayIP6 != n0.UnderlayIP {
		t.Fatalf("node0 addresses %s %s %s", n0.UnderlayIP, n0.PublicIP, n0.UnderlayIP6)
	}
	if !strings.HasPrefix(l.EtcdURL, "http://[2001:db8:ff::fe]:") {
		t.Fatalf("EtcdURL %s, want the hub's IPv6 address", l.EtcdURL)
	}
	if out := commandOut(t, n0, "ip", "-4", "addr", "show", "dev", UnderlayIface); strings.Contains(out, "inet ") {
		t.Fatalf("IPv4 on an IPv6-only underlay:\n%s", out)
	}
	if got := seenSource(t, ctx, n0, n1, n1.UnderlayIP); got != n0.UnderlayIP {
		t.Fatalf("node1 sees node0 as %s, want %s", got, n0.UnderlayIP)
	}
	status, _, err := GetIn(ctx, n0.NS, l.EtcdURL+"/version")
	if err != nil || status != 200 {
		t.Fatalf("etcd through the IPv6 proxy: %d %v", status, err)
	}
	for i, n := range l.Nodes {
		env := SubnetEnv{IPv6Network: netip.MustParsePrefix("2001:db8:244::/56"),
			IPv6Subnet: netip.MustParsePrefix(fmt.Sprintf("2001:db8:244:%d::1/64", i+1)), MTU: 1430, IPMasq: true}
		if err := n.WriteSubnetFile(env); err != nil {
			t.Fatal(err)
		}
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pod := n1.Pods[1]
	if pod.IP.IsValid() || pod.IP6.String() != "2001:db8:244:2::3" {
		t.Fatalf("node1 pod1 addresses %s %s, want only 2001:db8:244:2::3", pod.IP, pod.IP6)
	}
	for _, n := range l.Nodes {
		// cni0's address goes through duplicate address detection first.
		if err := pingRetry(l, n.Pods[0], n.Subnet.IPv6Subnet.Addr(), 5); err != nil {
			t.Errorf("pod to own gateway: %v", err)
		}
		if err := l.Ping(ctx, n.Pods[0], n.Pods[1].IP6); err != nil {
			t.Errorf("pod to pod on one bridge: %v", err)
		}
	}
	if m, err := l.PingAll(ctx); err == nil || !m.IPv6 || len(m.Failures()) != 8 {
		t.Fatalf("PingAll without overlay: IPv6 %t, %d of %d failed, err %v; want 8 of 12 over IPv6", m.IPv6, len(m.Failures()), len(m.Results), err)
	}
}

func pingRetry(l *Lab, from *Pod, to netip.Addr, attempts int) error {
	var err error
	for range attempts {
		if err = l.Ping(context.Background(), from, to); err == nil {
			return nil
		}
	}
	return err
}

func commandOut(t *testing.T, n *Node, args ...string) string {
	t.Helper()
	out, err := commandIn(testCtx(t), n.NS, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
