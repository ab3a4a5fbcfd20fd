package lab

import (
	"fmt"

	"github.com/overlayd/overlayd/icmpwire"
)

// ICMPv4 message types the pinger uses.
const (
	icmpEchoReply       = icmpwire.TypeEchoReply
	icmpDestUnreachable = icmpwire.TypeDestUnreachable
	icmpEchoRequest     = icmpwire.TypeEchoRequest
	icmpTimeExceeded    = icmpwire.TypeTimeExceeded
)

const icmpHeaderLen = icmpwire.HeaderLen

// echoVerdict classifies an ICMP message (IP header already stripped)
// received while waiting for echo (id, seq): a matching reply, an error
// about our request, or something else (ok and err both zero).
func echoVerdict(msg []byte, id, seq uint16) (ok bool, err error) {
	if len(msg) < icmpHeaderLen {
		return false, nil
	}
	switch msg[0] {
	case icmpEchoReply:
		return icmpwire.IsEcho(msg, icmpEchoReply, id, seq), nil
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
	return icmpwire.IsEcho(quoted[ihl:], icmpEchoRequest, id, seq)
}

func icmpTypeName(t byte) string {
	if t == icmpDestUnreachable {
		return "destination unreachable"
	}
	return "time exceeded"
}

// ICMPv6 message types the pinger uses.
const (
	icmp6DestUnreachable = icmpwire.Type6DestUnreachable
	icmp6PacketTooBig    = icmpwire.Type6PacketTooBig
	icmp6TimeExceeded    = icmpwire.Type6TimeExceeded
	icmp6EchoRequest     = icmpwire.Type6EchoRequest
	icmp6EchoReply       = icmpwire.Type6EchoReply
)

// echoVerdict6 is echoVerdict for ICMPv6.
func echoVerdict6(msg []byte, id, seq uint16) (ok bool, err error) {
	if len(msg) < icmpHeaderLen {
		return false, nil
	}
	switch msg[0] {
	case icmp6EchoReply:
		return icmpwire.IsEcho(msg, icmp6EchoReply, id, seq), nil
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
	return icmpwire.IsEcho(quoted[ip6HeaderLen:], icmp6EchoRequest, id, seq)
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
