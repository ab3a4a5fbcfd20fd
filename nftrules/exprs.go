package nftrules

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// udpDstOffset is the destination port's offset in the UDP header.
const udpDstOffset = 2

// family is what differs between the IPv4 and the IPv6 tables: everything
// else (chains, hooks, rules in order) is the same.
type family struct {
	nft                         nftables.TableFamily
	flannelTable, overlaydTable string
	srcOffset, dstOffset        uint32 // in the network header
	addrLen                     uint32
	multicast                   netip.Prefix
}

var (
	ipv4 = family{nftables.TableFamilyIPv4, FlannelTable4, OverlaydTable4, 12, 16, 4, netip.MustParsePrefix("224.0.0.0/4")}
	ipv6 = family{nftables.TableFamilyIPv6, FlannelTable6, OverlaydTable6, 8, 24, 16, netip.MustParsePrefix("ff00::/8")}
)

func familyOf(a netip.Addr) family {
	if a.Unmap().Is4() {
		return ipv4
	}
	return ipv6
}

func (f family) ref(table string) Ref { return Ref{Family: f.nft, Table: table} }

// src and dst match the source or destination address against a prefix.
func (f family) src(p netip.Prefix, neq bool) []expr.Any { return matchPrefix(f.srcOffset, p, neq) }
func (f family) dst(p netip.Prefix, neq bool) []expr.Any { return matchPrefix(f.dstOffset, p, neq) }

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

// srcNotInSet is "ip saddr != @set" ("ip6 saddr" for IPv6).
func (f family) srcNotInSet(set string) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.srcOffset, Len: f.addrLen},
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
