package samesite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The wire format, big-endian, one UDP datagram of messageLen bytes:
//
//	0  magic "OVSS"
//	4  version (2)
//	5  kind: 1 probe, 2 answer
//	6  nonce (16 bytes)
//	22 subnet address (IPv4, 4 bytes)   answer only, zero in a probe
//	26 subnet prefix length             answer only
//	27 VTEP MAC (6 bytes)               answer only
//	33 probed address (IPv4, 4 bytes)   answer only: where the probe went
//	37 ed25519 signature (64 bytes)     answer only (see sign.go)
//
// A probe is as long as an answer: the responder never sends more bytes
// than it received. Version 1 (unsigned answers) is not spoken any more:
// its answers proved nothing.
const (
	wireMagic   = "OVSS"
	wireVersion = 2
	nonceLen    = 16
	sigLen      = 64
	messageLen  = 4 + 1 + 1 + nonceLen + 4 + 1 + 6 + 4 + sigLen
)

type messageKind byte

const (
	kindProbe  messageKind = 1
	kindAnswer messageKind = 2
)

func (k messageKind) String() string {
	switch k {
	case kindProbe:
		return "probe"
	case kindAnswer:
		return "answer"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

type nonce [nonceLen]byte

// message is a probe (nonce only) or an answer (nonce, identity, the
// address probed and the responder's signature over them).
type message struct {
	kind   messageKind
	nonce  nonce
	subnet netip.Prefix
	mac    [6]byte
	probed netip.Addr
	sig    [sigLen]byte
}

var errMalformed = errors.New("malformed same-site message")

func (m message) marshal() []byte {
	b := make([]byte, messageLen)
	copy(b, wireMagic)
	b[4] = wireVersion
	b[5] = byte(m.kind)
	copy(b[6:], m.nonce[:])
	if m.kind == kindAnswer {
		if m.subnet.Addr().Is4() {
			a := m.subnet.Addr().As4()
			copy(b[22:], a[:])
			b[26] = byte(m.subnet.Bits())
		}
		copy(b[27:], m.mac[:])
		if m.probed.Is4() {
			p := m.probed.As4()
			copy(b[33:], p[:])
		}
		copy(b[37:], m.sig[:])
	}
	return b
}

// parseMessage decodes b; errors wrap errMalformed and name the field.
func parseMessage(b []byte) (message, error) {
	switch {
	case len(b) != messageLen:
		return message{}, fmt.Errorf("%w: length %d, want %d", errMalformed, len(b), messageLen)
	case string(b[:4]) != wireMagic:
		return message{}, fmt.Errorf("%w: magic %q, want %q", errMalformed, b[:4], wireMagic)
	case b[4] != wireVersion:
		return message{}, fmt.Errorf("%w: version %d, want %d", errMalformed, b[4], wireVersion)
	}
	m := message{kind: messageKind(b[5])}
	copy(m.nonce[:], b[6:22])
	switch m.kind {
	case kindProbe:
		return m, nil
	case kindAnswer:
	default:
		return message{}, fmt.Errorf("%w: kind %d is neither probe nor answer", errMalformed, b[5])
	}
	bits := int(b[26])
	if bits > 32 {
		return message{}, fmt.Errorf("%w: subnet prefix length %d is over 32", errMalformed, bits)
	}
	addr := netip.AddrFrom4([4]byte(b[22:26]))
	m.subnet = netip.PrefixFrom(addr, bits)
	if m.subnet.Masked() != m.subnet {
		return message{}, fmt.Errorf("%w: subnet %s is not masked", errMalformed, m.subnet)
	}
	copy(m.mac[:], b[27:33])
	m.probed = netip.AddrFrom4([4]byte(b[33:37]))
	copy(m.sig[:], b[37:])
	return m, nil
}

// String is the start of the nonce in hex, a short tag for debug logs.
func (n nonce) String() string { return fmt.Sprintf("%x", binary.BigEndian.Uint32(n[:4])) }
