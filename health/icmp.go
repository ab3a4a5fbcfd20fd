package health

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// The overlay probe is an ICMP echo from this node's flannel.<VNI>
// address to the peer's: it takes the VXLAN path pods use, needs nothing
// running on the peer (flanneld peers answer too), and the kernel
// answers it. The payload carries the probe's nonce.

// ListenICMP opens the raw ICMP socket of the overlay probe (root or
// CAP_NET_RAW). Reads return the ICMP message without the IP header.
func ListenICMP() (net.PacketConn, error) {
	return net.ListenPacket("ip4:icmp", "0.0.0.0")
}

const (
	icmpEchoReply   = 0
	icmpEchoRequest = 8
	icmpHeaderLen   = 8
	icmpPayloadLen  = 4 + len(Nonce{}) // magic, nonce
)

// echoRequest is an ICMP echo request with id and the nonce as payload.
func echoRequest(id uint16, n Nonce) []byte {
	b := make([]byte, icmpHeaderLen+icmpPayloadLen)
	b[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], binary.BigEndian.Uint16(n[:2]))
	copy(b[8:], magic)
	copy(b[12:], n[:])
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// parseEchoReply returns the nonce of an echo reply to our id.
func parseEchoReply(b []byte, id uint16) (Nonce, bool) {
	var n Nonce
	if len(b) < icmpHeaderLen+icmpPayloadLen || b[0] != icmpEchoReply || binary.BigEndian.Uint16(b[4:]) != id || string(b[8:12]) != magic {
		return n, false
	}
	copy(n[:], b[12:20])
	return n, true
}

// echoReplyTo is the reply a peer's kernel sends to req (for fakes).
func echoReplyTo(req []byte) []byte {
	b := append([]byte(nil), req...)
	b[0], b[2], b[3] = icmpEchoReply, 0, 0
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// checksum is RFC 1071's.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func ipAddr(a netip.Addr) *net.IPAddr { return &net.IPAddr{IP: a.AsSlice()} }
