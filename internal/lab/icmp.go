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

// ICMPv6 message types the pinger uses.
const (
	icmp6DestUnreachable = 1
	icmp6PacketTooBig    = 2
	icmp6TimeExceeded    = 3
	icmp6EchoRequest     = 128
	icmp6EchoReply       = 129
)

// echoRequest6 is an ICMPv6 echo request with a zero checksum: the
// kernel fills it in on a raw ICMPv6 socket (it covers the IPv6 pseudo
// header, which only the kernel knows).
func echoRequest6(id, seq uint16, payload []byte) []byte {
	b := make([]byte, icmpHeaderLen+len(payload))
	b[0] = icmp6EchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[icmpHeaderLen:], payload)
	return b
}

// echoVerdict6 is echoVerdict for ICMPv6.
func echoVerdict6(msg []byte, id, seq uint16) (ok bool, err error) {
	if len(msg) < icmpHeaderLen {
		return false, nil
	}
	switch msg[0] {
	case icmp6EchoReply:
		return binary.BigEndian.Uint16(msg[4:]) == id && binary.BigEndian.Uint16(msg[6:]) == seq, nil
	case icmp6DestUnreachable, icmp6PacketTooBig, icmp6TimeExceeded:
		if quotesOurEcho6(msg[icmpHeaderLen:], id, seq) {
			return false, fmt.Errorf("ICMPv6 %s (code %d)", icmp6TypeName(msg[0]), msg[1])
		}
	}
	return false, nil
}

// quotesOurEcho6 reports whether an ICMPv6 error's payload (the offending
// IPv6 packet) is our echo request (no extension headers: we send none).
func quotesOurEcho6(quoted []byte, id, seq uint16) bool {
	const ip6HeaderLen, nextICMPv6 = 40, 58
	if len(quoted) < ip6HeaderLen+icmpHeaderLen || quoted[6] != nextICMPv6 {
		return false
	}
	inner := quoted[ip6HeaderLen:]
	return inner[0] == icmp6EchoRequest && binary.BigEndian.Uint16(inner[4:]) == id && binary.BigEndian.Uint16(inner[6:]) == seq
}

func icmp6TypeName(t byte) string {
	switch t {
	case icmp6DestUnreachable:
		return "destination unreachable"
	case icmp6PacketTooBig:
		return "packet too big"
	}
	return "time exceeded"
}
