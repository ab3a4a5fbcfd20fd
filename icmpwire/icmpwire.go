// Package icmpwire builds and reads ICMPv4 echo messages (RFC 792) and
// computes the Internet checksum (RFC 1071): the few bytes the health
// prober, overlayd doctor and the test lab put on raw sockets.
package icmpwire

import "encoding/binary"

// ICMPv4 message types used here.
const (
	TypeEchoReply       = 0
	TypeDestUnreachable = 3
	TypeEchoRequest     = 8
	TypeTimeExceeded    = 11
)

// HeaderLen is the ICMP echo header: type, code, checksum, id, sequence.
const HeaderLen = 8

// EchoRequest is an ICMP echo request with id, seq and payload, and a
// valid checksum.
func EchoRequest(id, seq uint16, payload []byte) []byte {
	msg := make([]byte, HeaderLen+len(payload))
	msg[0] = TypeEchoRequest
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[HeaderLen:], payload)
	binary.BigEndian.PutUint16(msg[2:], Checksum(msg))
	return msg
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
