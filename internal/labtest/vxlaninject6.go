package labtest

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/icmpwire"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/vxlandata"
)

// AttackerIP6 is an address on the flat lab's IPv6 underlay
// (lab.Options.Underlay6) that is no node's.
var AttackerIP6 = netip.MustParsePrefix("2001:db8:ff::99/64")

// AddAttacker6 is AddAttacker with AttackerIP6 as well (no duplicate
// address detection, so it is usable at once).
func AddAttacker6(t testing.TB, l *lab.Lab) string {
	t.Helper()
	ns := AddAttacker(t, l)
	netnsutil.MustExec(t, ns, "ip", "addr", "add", AttackerIP6.String(), "dev", "eth0", "nodad")
	return ns
}

// CraftedVXLAN6 is CraftedVXLAN for the IPv6 device: inner Ethernet to
// node's IPv6 VTEP MAC (its lease's BackendV6Data), inner IPv6 from an
// address in peer's IPv6 subnet to node's first pod's IPv6 address, an
// ICMPv6 echo request carrying the marker.
func CraftedVXLAN6(t testing.TB, ctx context.Context, l *lab.Lab, node, peer *lab.Node) CraftedFrame {
	t.Helper()
	attrs, err := l.NodeLease(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	data, err := vxlandata.Unmarshal(attrs.BackendV6Data)
	if err != nil {
		t.Fatalf("%s: BackendV6Data: %v", node.Name, err)
	}
	id, marker := newMarker("overlayd-injected6-")
	src := peer.Subnet.Lease6().Addr().As16()
	src[15] = 0xc8
	dst := node.Pods[0].IP6.As16()
	icmp := icmpwire.EchoRequest6(id, 1, marker) // checksum over the pseudo-header below
	binary.BigEndian.PutUint16(icmp[2:], icmpv6Checksum(src, dst, icmp))
	return CraftedFrame{Packet: vxlanFrame(data.VtepMAC, 0x86dd, ipv6Header(src, dst, len(icmp)), icmp), Marker: marker}
}

// InjectAndWatch6 sends the crafted frame from the attacker to node's
// IPv6 underlay address, VXLAN port, and reports whether pod saw the
// inner ICMPv6 echo.
func InjectAndWatch6(t testing.TB, attacker string, node *lab.Node, pod *lab.Pod, frame CraftedFrame) bool {
	t.Helper()
	return injectAndWatch(t, attacker, pod, frame, injectPath{
		to: netip.AddrPortFrom(node.UnderlayIP6, 8472), udp: "udp6", icmp: "ip6:ipv6-icmp", any: "::"})
}

func ipv6Header(src, dst [16]byte, payloadLen int) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	h[6] = 58 // ICMPv6
	h[7] = 64 // hop limit
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return h
}

// icmpv6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// over the IPv6 pseudo-header.
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	pseudo := make([]byte, 0, 40+len(msg))
	pseudo = append(pseudo, src[:]...)
	pseudo = append(pseudo, dst[:]...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(msg)))
	pseudo = append(pseudo, 0, 0, 0, 58)
	pseudo = append(pseudo, msg...)
	return icmpwire.Checksum(pseudo)
}
