package nftrules

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Offsets of the fields matched, in the IPv4 and UDP headers.
const (
	ipv4SrcOffset = 12
	ipv4DstOffset = 16
	udpDstOffset  = 2
)

// matchPrefix loads an address field and compares it with a prefix the way
// nft encodes "ip saddr 10.244.0.0/16": a length of whole bytes loads only
// those bytes, any other length loads the whole address and masks it.
// neq makes it "!=".
func matchPrefix(offset uint32, p netip.Prefix, neq bool) []expr.Any {
	p = p.Masked()
	bits := p.Bits()
	n := uint32(bits / 8)
	if bits%8 != 0 {
		n = uint32(p.Addr().BitLen() / 8)
	}
	addr := p.Addr().AsSlice()[:n]
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n}}
	if bits%8 != 0 {
		mask := make([]byte, n)
		for i := range mask {
			left := bits - 8*i
			switch {
			case left >= 8:
				mask[i] = 0xff
			case left > 0:
				mask[i] = byte(0xff << (8 - left))
			}
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: op, Register: 1, Data: addr})
}

// matchMarkBits is "meta mark & m == m": every bit of m is set.
func matchMarkBits(m uint32) []expr.Any {
	b := binary.NativeEndian.AppendUint32(nil, m)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: b, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// matchUDPDport is "udp dport <port>".
func matchUDPDport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: udpDstOffset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}

// matchSrcNotInSet is "ip saddr != @set".
func matchSrcNotInSet(set string) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: ipv4SrcOffset, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set, Invert: true},
	}
}

func verdict(k expr.VerdictKind) expr.Any { return &expr.Verdict{Kind: k} }

func masquerade(fullyRandom bool) expr.Any { return &expr.Masq{FullyRandom: fullyRandom} }

func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
