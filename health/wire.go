package health

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// DefaultPort is the responder's UDP port when --health-port is not given:
// next to VXLAN's 8472 and the same-site port 8475, clashing with neither.
const DefaultPort = 8476

// Wire format (big endian), both directions:
//
//	0..3   magic "OVLH"
//	4      version (1)
//	5      kind: 1 request, 2 reply
//	6..7   zero
//	8..15  nonce, chosen by the prober, echoed by the responder
//	16..31 reply only: the request's source address as the responder saw it (IPv6 or IPv4-mapped)
//	32..33 reply only: the request's source port
//
// A request is padded to at least ReplyLen bytes, so that the reply is
// never larger than the request that caused it.
const (
	magic      = "OVLH"
	version    = 1
	kindReq    = 1
	kindReply  = 2
	headerLen  = 16
	ReplyLen   = 34
	MaxRequest = 512
)

// Nonce identifies one probe.
type Nonce [8]byte

// Request is a probe request with nonce n, padded to ReplyLen.
func Request(n Nonce) []byte {
	b := make([]byte, ReplyLen)
	putHeader(b, kindReq, n)
	return b
}

// Reply is the answer to a request from src.
func reply(n Nonce, src netip.AddrPort) []byte {
	b := make([]byte, ReplyLen)
	putHeader(b, kindReply, n)
	a := src.Addr().As16()
	copy(b[16:32], a[:])
	binary.BigEndian.PutUint16(b[32:], src.Port())
	return b
}

func putHeader(b []byte, kind byte, n Nonce) {
	copy(b, magic)
	b[4], b[5] = version, kind
	copy(b[8:16], n[:])
}

var errNotOurs = errors.New("not an overlayd health message")

// parseRequest accepts a request of ReplyLen..MaxRequest bytes.
func parseRequest(b []byte) (Nonce, error) {
	var n Nonce
	if len(b) < ReplyLen || len(b) > MaxRequest {
		return n, fmt.Errorf("request of %d bytes (want %d..%d): %w", len(b), ReplyLen, MaxRequest, errNotOurs)
	}
	if string(b[:4]) != magic || b[4] != version || b[5] != kindReq {
		return n, errNotOurs
	}
	copy(n[:], b[8:16])
	return n, nil
}

// ParseReply reads a reply: its nonce and the address the responder saw
// the request come from (behind NAT: the NAT's public address).
func ParseReply(b []byte) (Nonce, netip.AddrPort, error) {
	var n Nonce
	if len(b) != ReplyLen || string(b[:4]) != magic || b[4] != version || b[5] != kindReply {
		return n, netip.AddrPort{}, errNotOurs
	}
	copy(n[:], b[8:16])
	addr := netip.AddrFrom16([16]byte(b[16:32])).Unmap()
	return n, netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[32:])), nil
}
