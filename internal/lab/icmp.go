package lab

import (
	"encoding/binary"
	"fmt"
)

// ICMPv4 message types the pinger uses.
const (
	icmpEchoReply       = 0
	icmpDestUnreachable = 3
	icmpEchoRequest     = 8
	icmpTimeExceeded    = 11
)

const icmpHeaderLen = 8

// EchoRequest builds an ICMP echo request with a valid checksum.
func EchoRequest(id, seq uint16, payload []byte) []byte {
	msg := make([]byte, icmpHeaderLen+len(payload))
	msg[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[icmpHeaderLen:], payload)
	binary.BigEndian.PutUint16(msg[2:], InternetChecksum(msg))
	return msg
}

// InternetChecksum is RFC 1071's ones' complement sum.
func InternetChecksum(b []byte) uint16 {
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

// echoVerdict classifies an ICMP message (IP header already stripped)
// received while waiting for echo (id, seq): a matching reply, an error
// about our request, or something else (ok and err both zero).
func echoVerdict(msg []byte, id, seq uint16) (ok bool, err error) {
	if len(msg) < icmpHeaderLen {
		return false, nil
	}
	switch msg[0] {
	case icmpEchoReply:
		return binary.BigEndian.Uint16(msg[4:]) == id && binary.BigEndian.Uint16(msg[6:]) == seq, nil
	case icmpDestUnreachable, icmpTimeExceeded:
		if quotesOurEcho(msg[icmpHeaderLen:], id, seq) {
			return false, fmt.Errorf("ICMP %s (code %d)", icmpTypeName(msg[0]), msg[1])
		}
	}
	return false, nil
}

// quotesOurEcho reports whether an ICMP error's payload (the offending
// IPv4 header and the first 8 bytes after it) is our echo request.
func quotesOurEcho(quoted []byte, id, seq uint16) bool {
	if len(quoted) < 20 {
		return false
	}
	ihl := int(quoted[0]&0x0f) * 4
	if ihl < 20 || len(quoted) < ihl+icmpHeaderLen || quoted[9] != 1 { // 1 = ICMP
		return false
	}
	inner := quoted[ihl:]
	return inner[0] == icmpEchoRequest && binary.BigEndian.Uint16(inner[4:]) == id && binary.BigEndian.Uint16(inner[6:]) == seq
}

func icmpTypeName(t byte) string {
	if t == icmpDestUnreachable {
		return "destination unreachable"
	}
	return "time exceeded"
}
