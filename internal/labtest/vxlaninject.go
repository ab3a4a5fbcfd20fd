package labtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/overlayd/overlayd/icmpwire"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// AttackerIP is an address on the flat underlay that is no node's.
var AttackerIP = netip.MustParsePrefix("192.0.2.99/24")

// AddAttacker plugs a namespace with AttackerIP into the hub's bridge of a
// flat lab and returns its name; it is removed at the end of the test.
func AddAttacker(t testing.TB, l *lab.Lab) string {
	t.Helper()
	ns := netnsutil.NewT(t, "atk")
	netnsutil.MustExec(t, ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "atk", "netns", l.Hub)
	netnsutil.MustExec(t, l.Hub, "ip", "link", "set", "atk", "master", "br0", "up")
	netnsutil.MustExec(t, ns, "ip", "addr", "add", AttackerIP.String(), "dev", "eth0")
	netnsutil.MustExec(t, ns, "ip", "link", "set", "eth0", "up")
	return ns
}

// InjectCount is how many copies of the frame InjectAndWatch sends.
const InjectCount = 3

// CraftedFrame is a VXLAN packet (VNI 1) whose inner frame is an ICMP
// echo to a pod on a node, with a marker in its payload.
type CraftedFrame struct {
	Packet []byte
	Marker []byte
}

// CraftedVXLAN builds the frame a stranger would send: inner Ethernet to
// node's VTEP MAC, inner IPv4 from an address in peer's pod subnet (so the
// kernel's reverse path check passes) to node's first pod.
func CraftedVXLAN(t testing.TB, ctx context.Context, l *lab.Lab, node, peer *lab.Node) CraftedFrame {
	t.Helper()
	dstMAC, err := net.ParseMAC(VtepMAC(t, ctx, l, node))
	if err != nil {
		t.Fatal(err)
	}
	id, marker := newMarker("overlayd-injected-")
	src := peer.Subnet.Lease().Addr().As4()
	src[3] = 200
	icmp := icmpwire.EchoRequest(id, 1, marker)
	ip := ipv4Header(src, node.Pods[0].IP.As4(), len(icmp))
	return CraftedFrame{Packet: vxlanFrame(dstMAC, 0x0800, ip, icmp), Marker: marker}
}

// newMarker is a random marker for an injected echo's payload, and an echo
// id taken from the same random bytes.
func newMarker(prefix string) (id uint16, marker []byte) {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:2]), []byte(prefix + hex.EncodeToString(b[:]))
}

// vxlanFrame is a VXLAN packet (I flag, VNI 1) carrying an Ethernet frame
// to dstMAC from a made-up MAC, of etherType, with the packet's parts.
func vxlanFrame(dstMAC net.HardwareAddr, etherType uint16, packet ...[]byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}) // VXLAN: I flag, VNI 1
	b.Write(dstMAC)
	b.Write([]byte{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01})
	b.Write(binary.BigEndian.AppendUint16(nil, etherType))
	for _, p := range packet {
		b.Write(p)
	}
	return b.Bytes()
}

// InjectAndWatch sends the crafted VXLAN packet from the attacker to
// node's VXLAN port and reports whether pod saw the inner ICMP echo.
func InjectAndWatch(t testing.TB, attacker string, node *lab.Node, pod *lab.Pod, frame CraftedFrame) bool {
	t.Helper()
	return injectAndWatch(t, attacker, pod, frame, injectPath{
		to: netip.AddrPortFrom(node.UnderlayIP, 8472), udp: "udp4", icmp: "ip4:icmp", any: "0.0.0.0"})
}

// injectPath is one family's way in: the node's VXLAN address and port,
// and the networks of the attacker's UDP socket and the pod's ICMP one.
type injectPath struct {
	to             netip.AddrPort
	udp, icmp, any string
}

// injectAndWatch sends frame InjectCount times from the attacker along p
// and reports whether pod received the inner echo (its marker).
func injectAndWatch(t testing.TB, attacker string, pod *lab.Pod, frame CraftedFrame, p injectPath) bool {
	t.Helper()
	icmp, err := netnsutil.In(pod.NS, func() (net.PacketConn, error) { return net.ListenPacket(p.icmp, p.any) })
	if err != nil {
		t.Fatal(err)
	}
	defer icmp.Close()
	udp, err := netnsutil.In(attacker, func() (net.Conn, error) { return net.Dial(p.udp, p.to.String()) })
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for range InjectCount {
		if _, err := udp.Write(frame.Packet); err != nil {
			t.Fatalf("send crafted VXLAN to %s: %v", p.to, err)
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
			t.Fatalf("read %s in pod %s: %v", p.icmp, pod, err)
		}
		if bytes.Contains(buf[:n], frame.Marker) {
			return true
		}
	}
}

// UDPSourceSeen sends datagrams from fromNS to dst (an address in toNS)
// and returns the source address the receiver saw.
func UDPSourceSeen(t testing.TB, fromNS, toNS string, dst netip.Addr) netip.Addr {
	t.Helper()
	conn, err := netnsutil.In(toNS, func() (net.PacketConn, error) { return net.ListenPacket("udp4", netip.AddrPortFrom(dst, 0).String()) })
	if err != nil {
		t.Fatalf("listen in %s: %v", toNS, err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	out, err := lab.DialIn(Context(t, 10*time.Second), fromNS, "udp4", netip.AddrPortFrom(dst, uint16(port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64)
	for range 20 {
		out.Write([]byte("overlayd-source"))
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if _, from, err := conn.ReadFrom(buf); err == nil {
			return from.(*net.UDPAddr).AddrPort().Addr().Unmap()
		}
	}
	t.Fatalf("no datagram from %s reached %s in %s", fromNS, dst, toNS)
	return netip.Addr{}
}

func ipv4Header(src, dst [4]byte, payloadLen int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	h[8] = 64 // TTL
	h[9] = 1  // ICMP
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	binary.BigEndian.PutUint16(h[10:], icmpwire.Checksum(h))
	return h
}
