// Package icmpwire builds and reads ICMP echo messages (ICMPv4, RFC 792;
// ICMPv6, RFC 4443) and computes the Internet checksum (RFC 1071): the few
// bytes the health prober, overlayd doctor and the test lab put on raw
// sockets.
package icmpwire

import "encoding/binary"

// ICMPv4 message types used here.
const (
	TypeEchoReply       = 0
	TypeDestUnreachable = 3
	TypeEchoRequest     = 8
	TypeTimeExceeded    = 11
)

// ICMPv6 message types used here.
const (
	Type6DestUnreachable = 1
	Type6PacketTooBig    = 2
	Type6TimeExceeded    = 3
	Type6EchoRequest     = 128
	Type6EchoReply       = 129
)

// HeaderLen is the ICMP echo header: type, code, checksum, id, sequence.
const HeaderLen = 8

// EchoRequest is an ICMP echo request with id, seq and payload, and a
// valid checksum.
func EchoRequest(id, seq uint16, payload []byte) []byte {
	msg := echo(TypeEchoRequest, id, seq, payload)
	binary.BigEndian.PutUint16(msg[2:], Checksum(msg))
	return msg
}

// EchoRequest6 is an ICMPv6 echo request with id, seq and payload, and a
// zero checksum: the checksum covers the IPv6 pseudo-header, which the
// kernel fills in on a raw ICMPv6 socket.
func EchoRequest6(id, seq uint16, payload []byte) []byte {
	return echo(Type6EchoRequest, id, seq, payload)
}

func echo(typ byte, id, seq uint16, payload []byte) []byte {
	msg := make([]byte, HeaderLen+len(payload))
	msg[0] = typ
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[HeaderLen:], payload)
	return msg
}

// IsEcho reports whether msg is an echo message of type typ (a request or
// a reply, either version) with id and seq.
func IsEcho(msg []byte, typ byte, id, seq uint16) bool {
	return len(msg) >= HeaderLen && msg[0] == typ &&
		binary.BigEndian.Uint16(msg[4:]) == id && binary.BigEndian.Uint16(msg[6:]) == seq
}

// Checksum is the Internet checksum of b: the ones' complement of the
// ones' complement sum of its 16-bit words (RFC 1071).
func Checksum(b []byte) uint16 {
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
