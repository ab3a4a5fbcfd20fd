package publiccloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Names the peer filter installs (iptables/peerfilter.go).
const (
	peerChain = "OVERLAYD-VXLAN"
	peerSet   = "overlayd-vxlan-peers"
)

// attackerIP is an address on the flat underlay that is no node's.
var attackerIP = netip.MustParsePrefix("192.0.2.99/24")

// TestVXLANPeerFilterDropsStrangers: with --vxlan-peer-filter a host on
// the underlay that is not a peer cannot inject frames into the pod
// network through UDP 8472, while peers are unaffected; restarted without
// the flag, overlayd removes the chain, its jump and the set, and the
// same packet then reaches the pod (so the filter is what dropped it).
func TestVXLANPeerFilterDropsStrangers(t *testing.T) {
	l := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1, Topology: lab.Flat}, "--vxlan-peer-filter")
	n0, n1 := l.Nodes[0], l.Nodes[1]
	ctx := labtest.Context(t, 50*time.Second)
	labtest.WaitFor(t, convergeTimeout, "the peer filter in place on node0", func() (bool, string) {
		set, err := netnsutil.Exec(ctx, n0.NS, "ipset", "list", peerSet)
		return err == nil && strings.Contains(set, n1.UnderlayIP.String()), set
	})
	attacker := addAttacker(t, l)
	// A few tries: the first ping from a new namespace waits for ARP, and a
	// loaded machine can take longer than one ping's second for that.
	var err error
	for try := 0; try < 3; try++ {
		if err = lab.PingFrom(ctx, attacker, n0.UnderlayIP); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the attacker is not on the underlay: %v", err)
	}
	frame := craftedVXLAN(t, ctx, l, n0, n1)
	target := n0.Pods[0]

	dropsBefore := dropCount(t, ctx, n0)
	if seen := injectAndWatch(t, attacker, n0, target, frame); seen {
		t.Fatalf("pod %s received the injected frame despite the filter", target)
	}
	if got := dropCount(t, ctx, n0); got < dropsBefore+injectCount {
		t.Errorf("%s DROP counter went from %d to %d, want +%d", peerChain, dropsBefore, got, injectCount)
	}
	pingAll(t, l)

	if err := l.Agent(n0).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop overlayd on node0: %v", err)
	}
	startAgent(t, l, n0)
	labtest.WaitUp(t, l, n0, upTimeout)
	labtest.WaitFor(t, convergeTimeout, "the peer filter removed from node0", func() (bool, string) {
		return peerFilterGone(ctx, n0)
	})
	if seen := injectAndWatch(t, attacker, n0, target, frame); !seen {
		t.Errorf("without the filter the injected frame did not reach pod %s either: the test's frame is wrong", target)
	}
	pingAll(t, l)
}

// addAttacker plugs a namespace with attackerIP into the hub's bridge.
func addAttacker(t *testing.T, l *lab.Lab) string {
	t.Helper()
	ns := netnsutil.NewT(t, "atk")
	netnsutil.MustExec(t, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "atk", "netns", l.Hub)
	netnsutil.MustExec(t, l.Hub, "ip", "link", "set", "atk", "master", "br0", "up")
	netnsutil.MustExec(t, ns, "ip", "addr", "add", attackerIP.String(), "dev", "eth0")
	netnsutil.MustExec(t, ns, "ip", "link", "set", "eth0", "up")
	return ns
}

// injectCount is how many copies of the frame injectAndWatch sends.
const injectCount = 3

// injectAndWatch sends the crafted VXLAN packet from the attacker to
// node's VXLAN port and reports whether pod saw the inner ICMP echo.
func injectAndWatch(t *testing.T, attacker string, node *lab.Node, pod *lab.Pod, frame craftedFrame) bool {
	t.Helper()
	var icmp net.PacketConn
	if err := netnsutil.Do(pod.NS, func() (err error) {
		icmp, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer icmp.Close()
	var udp net.Conn
	to := netip.AddrPortFrom(node.UnderlayIP, 8472)
	if err := netnsutil.Do(attacker, func() (err error) {
		udp, err = net.Dial("udp4", to.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for range injectCount {
		if _, err := udp.Write(frame.packet); err != nil {
			t.Fatalf("send crafted VXLAN to %s: %v", to, err)
		}
	}
	icmp.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	for {
		n, _, err := icmp.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
		if err != nil {
			t.Fatalf("read ICMP in pod %s: %v", pod, err)
		}
		if bytes.Contains(buf[:n], frame.marker) {
			return true
		}
	}
}

// dropCount reads the packet counter of the DROP rule in OVERLAYD-VXLAN.
func dropCount(t *testing.T, ctx context.Context, n *lab.Node) int {
	t.Helper()
	out, err := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-L", peerChain, "-n", "-v", "-x")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" {
			count, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("DROP rule counter %q: %v", f[0], err)
			}
			return count
		}
	}
	t.Fatalf("%s on %s has no DROP rule:\n%s", peerChain, n.Name, out)
	return 0
}

// peerFilterGone: no chain, no jump from INPUT, no set.
func peerFilterGone(ctx context.Context, n *lab.Node) (bool, string) {
	chain, chainErr := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-S", peerChain)
	input, err := netnsutil.Exec(ctx, n.NS, "iptables", "-w", "5", "-S", "INPUT")
	if err != nil {
		return false, err.Error()
	}
	sets, err := netnsutil.Exec(ctx, n.NS, "ipset", "list", "-n")
	if err != nil {
		return false, err.Error()
	}
	gone := chainErr != nil && !strings.Contains(input, peerChain) && !strings.Contains(sets, peerSet)
	return gone, fmt.Sprintf("iptables -S %s: %v %s\nINPUT:\n%s\nsets:\n%s", peerChain, chainErr, chain, input, sets)
}

// craftedFrame is a VXLAN packet (VNI 1) whose inner frame is an ICMP
// echo to a pod on node, with a marker in its payload.
type craftedFrame struct {
	packet []byte
	marker []byte
}

// craftedVXLAN builds the frame a stranger would send: inner Ethernet to
// node's VTEP MAC, inner IPv4 from an address in peer's pod subnet (so the
// kernel's reverse path check passes) to node's first pod.
func craftedVXLAN(t *testing.T, ctx context.Context, l *lab.Lab, node, peer *lab.Node) craftedFrame {
	t.Helper()
	dstMAC, err := net.ParseMAC(vtepMAC(t, ctx, l, node))
	if err != nil {
		t.Fatal(err)
	}
	var id [8]byte
	rand.Read(id[:])
	marker := []byte("overlayd-injected-" + hex.EncodeToString(id[:]))
	src := peer.Subnet.Lease().Addr().As4()
	src[3] = 200
	icmp := icmpEcho(binary.BigEndian.Uint16(id[:2]), marker)
	ip := ipv4Header(src, node.Pods[0].IP.As4(), len(icmp))
	var b bytes.Buffer
	b.Write([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}) // VXLAN: I flag, VNI 1
	b.Write(dstMAC)
	b.Write([]byte{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x08, 0x00}) // src MAC, IPv4
	b.Write(ip)
	b.Write(icmp)
	return craftedFrame{packet: b.Bytes(), marker: marker}
}

func icmpEcho(id uint16, payload []byte) []byte {
	m := make([]byte, 8+len(payload))
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], 1)
	copy(m[8:], payload)
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	return m
}

func ipv4Header(src, dst [4]byte, payloadLen int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	h[8] = 64 // TTL
	h[9] = 1  // ICMP
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return h
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
