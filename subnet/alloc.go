package subnet

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// MaxCandidates is how many free subnets the allocator gathers before
// picking one at random (flannel's figure).
const MaxCandidates = 100

// InRange reports whether p is a valid IPv4 lease under this config: the
// right length, aligned, and between SubnetMin and SubnetMax inclusive.
func (c *Config) InRange(p netip.Prefix) bool {
	if !c.EnableIPv4 || !p.IsValid() || !p.Addr().Is4() {
		return false
	}
	return p.Bits() == c.SubnetLen && p.Masked() == p &&
		p.Addr().Compare(c.SubnetMin) >= 0 && p.Addr().Compare(c.SubnetMax) <= 0
}

// InRangeV6 reports whether p is a valid IPv6 lease subnet under this
// config: the right length, aligned, and between IPv6SubnetMin and
// IPv6SubnetMax inclusive.
func (c *Config) InRangeV6(p netip.Prefix) bool {
	if !c.EnableIPv6 || !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return false
	}
	return p.Bits() == c.IPv6SubnetLen && p.Masked() == p &&
		p.Addr().Compare(c.IPv6SubnetMin) >= 0 && p.Addr().Compare(c.IPv6SubnetMax) <= 0
}

// Fits reports whether a lease with this identity fits the config: each
// enabled family has an in-range subnet and a disabled one has none
// (flanneld deletes and replaces its own lease otherwise).
func (c *Config) Fits(id LeaseID) bool {
	v4 := c.InRange(id.Subnet) || (!c.EnableIPv4 && !id.Subnet.IsValid())
	v6 := c.InRangeV6(id.IPv6Subnet) || (!c.EnableIPv6 && !id.IPv6Subnet.IsValid())
	return v4 && v6
}

// Candidates walks the IPv4 subnets of cfg upward from SubnetMin to
// SubnetMax (inclusive) and returns at most limit of them that overlap no
// prefix in taken. taken may be in any order and hold prefixes of any
// length; prefixes of another family are ignored. It costs O(T log T + limit)
// for T taken prefixes, not O(T) per candidate.
func Candidates(cfg *Config, taken []netip.Prefix, limit int) []netip.Prefix {
	if !cfg.EnableIPv4 || limit <= 0 {
		return nil
	}
	return freeSubnets(cfg.SubnetMin, cfg.SubnetMax, cfg.SubnetLen, taken, limit)
}

// CandidatesV6 is Candidates for the IPv6 subnets, from IPv6SubnetMin to
// IPv6SubnetMax. It jumps over taken spans, so a /64 range of 2^62 subnets
// costs no more than a small one.
func CandidatesV6(cfg *Config, taken []netip.Prefix, limit int) []netip.Prefix {
	if !cfg.EnableIPv6 || limit <= 0 {
		return nil
	}
	return freeSubnets(cfg.IPv6SubnetMin, cfg.IPv6SubnetMax, cfg.IPv6SubnetLen, taken, limit)
}

// PickSubnet returns one of the candidates chosen uniformly with rng, or
// false when there is none.
func PickSubnet(candidates []netip.Prefix, rng *rand.Rand) (netip.Prefix, bool) {
	if len(candidates) == 0 {
		return netip.Prefix{}, false
	}
	return candidates[rng.IntN(len(candidates))], true
}

// span is a closed interval of addresses, as 128-bit integers.
type span struct{ first, last u128 }

func freeSubnets(min, max netip.Addr, subnetLen int, taken []netip.Prefix, limit int) []netip.Prefix {
	bitLen := min.BitLen()
	busy := busySpans(taken, min.Is4())
	step := blockSize(bitLen - subnetLen)
	cur, last := toU128(min), toU128(max)
	var out []netip.Prefix
	i := 0
	for cur.cmp(last) <= 0 && len(out) < limit {
		end := cur.add(step).sub1()
		for i < len(busy) && busy[i].last.cmp(cur) < 0 {
			i++
		}
		if i < len(busy) && busy[i].first.cmp(end) <= 0 {
			// Jump past the busy span to the next aligned subnet.
			next := busy[i].last.add1().alignUp(step)
			if next.cmp(cur) <= 0 {
				break // wrapped past the top of the address space
			}
			cur = next
			continue
		}
		out = append(out, netip.PrefixFrom(fromU128(cur, bitLen), subnetLen))
		next := cur.add(step)
		if next.cmp(cur) <= 0 {
			break
		}
		cur = next
	}
	return out
}

// busySpans turns the taken prefixes of one family into sorted spans.
func busySpans(taken []netip.Prefix, is4 bool) []span {
	spans := make([]span, 0, len(taken))
	for _, p := range taken {
		if !p.IsValid() || p.Addr().Is4() != is4 {
			continue
		}
		p = p.Masked()
		first := toU128(p.Addr())
		hostBits := p.Addr().BitLen() - p.Bits()
		spans = append(spans, span{first: first, last: first.add(lowMask(hostBits))})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	return spans
}

// firstSubnet is the network's second subnet: flannel skips the first.
func firstSubnet(network netip.Prefix, subnetLen int) netip.Addr {
	bitLen := network.Addr().BitLen()
	step := blockSize(bitLen - subnetLen)
	return fromU128(toU128(network.Addr()).add(step), bitLen)
}

// lastSubnet is the network address of the network's last subnet.
func lastSubnet(network netip.Prefix, subnetLen int) netip.Addr {
	bitLen := network.Addr().BitLen()
	hostMask := lowMask(bitLen - network.Bits())
	subnetMask := lowMask(bitLen - subnetLen)
	return fromU128(toU128(network.Addr()).add(hostMask).sub(subnetMask), bitLen)
}

// u128 is an address as an unsigned 128-bit integer (IPv4 in the low
// 32 bits). Arithmetic wraps like unsigned integers do.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var v u128
	for i := 0; i < 8; i++ {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[8+i])
	}
	return v
}

func fromU128(v u128, bitLen int) netip.Addr {
	if bitLen == 32 {
		return netip.AddrFrom4([4]byte{byte(v.lo >> 24), byte(v.lo >> 16), byte(v.lo >> 8), byte(v.lo)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(v.hi >> (8 * i))
		b[15-i] = byte(v.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (v u128) cmp(w u128) int {
	switch {
	case v.hi != w.hi:
		return cmpUint(v.hi, w.hi)
	default:
		return cmpUint(v.lo, w.lo)
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (v u128) add(w u128) u128 {
	lo, carry := bits.Add64(v.lo, w.lo, 0)
	hi, _ := bits.Add64(v.hi, w.hi, carry)
	return u128{hi: hi, lo: lo}
}

func (v u128) sub(w u128) u128 {
	lo, borrow := bits.Sub64(v.lo, w.lo, 0)
	hi, _ := bits.Sub64(v.hi, w.hi, borrow)
	return u128{hi: hi, lo: lo}
}

func (v u128) add1() u128 { return v.add(u128{lo: 1}) }
func (v u128) sub1() u128 { return v.sub(u128{lo: 1}) }

// alignUp rounds v up to a multiple of step, a power of two; it wraps to
// zero past the top of the address space.
func (v u128) alignUp(step u128) u128 {
	mask := step.sub1()
	down := u128{hi: v.hi &^ mask.hi, lo: v.lo &^ mask.lo}
	if down == v {
		return v
	}
	return down.add(step)
}

// lowMask has the low n bits set (n in 0..128).
func lowMask(n int) u128 {
	switch {
	case n >= 128:
		return u128{hi: ^uint64(0), lo: ^uint64(0)}
	case n >= 64:
		return u128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	default:
		return u128{lo: 1<<n - 1}
	}
}

// blockSize is 2^n, the number of addresses under n host bits (n < 128).
func blockSize(n int) u128 { return lowMask(n).add1() }
