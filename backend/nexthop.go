package backend

import (
	"encoding/binary"
	"net/netip"
)

// Nexthop objects. In nexthop route mode each VXLAN peer gets
// `nexthop replace id <id> via <subnet address> dev flannel.<VNI> onlink`
// and its route is `<subnet> nhid <id>`: the same forwarding as flannel's
// `<subnet> via <subnet address> dev flannel.<VNI> onlink`, but the kernel
// shares one fib_info per nexthop instead of walking one hash chain of
// distinct gateways per insert (docs/performance.md, "Nexthop objects").
//
// The id is derived from the subnet alone, so a restarted agent finds its
// own objects: the subnet's index in the cluster network (its address
// offset divided by its size), in the low 24 bits, under a reserved top
// byte. Two subnets can only get the same id in a network with more than
// 2^24 subnets; the later one then keeps a plain onlink route.

// nexthopIDBase is the reserved top byte of overlayd's nexthop ids; every
// nexthop object on our device with an id in the range is ours. Nexthop
// ids are one space for both families, so the IPv6 device's objects
// (flannel-v6.<VNI>) take the next top byte, nexthopIDBaseV6: subnet 1 of
// each network would otherwise replace the other family's object.
const (
	nexthopIDBase   = 0xF1 << 24
	nexthopIDBaseV6 = 0xF2 << 24
	nexthopIDMask   = 1<<24 - 1
)

// ownNexthopID reports whether id is in one of overlayd's ranges.
func ownNexthopID(id uint32) bool {
	top := id &^ nexthopIDMask
	return top == nexthopIDBase || top == nexthopIDBaseV6
}

// nexthopID derives the id of a subnet's nexthop in network.
func nexthopID(network, s netip.Prefix) uint32 {
	var off uint64
	base := uint32(nexthopIDBase)
	if s.Addr().Is4() {
		a, n := s.Addr().As4(), network.Addr().As4()
		off = uint64(binary.BigEndian.Uint32(a[:])-binary.BigEndian.Uint32(n[:])) >> (32 - s.Bits())
	} else {
		base = nexthopIDBaseV6
		a, n := s.Addr().As16(), network.Addr().As16()
		if s.Bits() <= 64 {
			off = (binary.BigEndian.Uint64(a[:8]) - binary.BigEndian.Uint64(n[:8])) >> (64 - s.Bits())
		} else {
			off = (binary.BigEndian.Uint64(a[8:]) - binary.BigEndian.Uint64(n[8:])) >> (128 - s.Bits())
		}
	}
	return base | uint32(off&nexthopIDMask)
}

// nexthopWant is the desired nexthop object: via the peer subnet's
// address, onlink, on our device.
type nexthopWant struct {
	gw netip.Addr
}

// believedNexthop is one of our nexthop objects as the kernel reported it.
type believedNexthop struct {
	gw     addr16
	link   int32
	onlink bool
}

// nexthopView is the desired view of the nexthop table.
type nexthopView struct{ d *desiredState }

func (v nexthopView) get(id uint32) (nexthopWant, *peer, bool) {
	p, ok := v.d.nexthop[id]
	if !ok {
		return nexthopWant{}, nil, false
	}
	return nexthopWant{gw: p.subnet.Addr()}, p, true
}

func (v nexthopView) entries(yield func(uint32, nexthopWant, *peer) bool) {
	for id, p := range v.d.nexthop {
		if !yield(id, nexthopWant{gw: p.subnet.Addr()}, p) {
			return
		}
	}
}

// claimNexthop gives a non-direct peer its nexthop in nexthop mode,
// unless another peer holds the id.
func (d *desiredState) claimNexthop(p *peer) {
	p.nhid = 0
	if !d.nexthops || p.direct {
		return
	}
	id := nexthopID(d.network, p.subnet)
	if q, taken := d.nexthop[id]; taken && q != p {
		d.log.Warn("two peer subnets map to one nexthop id; the later keeps an onlink route",
			"lease", p.subnet, "other_lease", q.subnet, "nhid", id)
		return
	}
	d.nexthop[id] = p
	p.nhid = id
	d.dirty.nexthop.add(id)
}

func (d *desiredState) unclaimNexthop(p *peer) {
	if p.nhid == 0 {
		return
	}
	if d.nexthop[p.nhid] == p {
		delete(d.nexthop, p.nhid)
	}
	d.dirty.nexthop.add(p.nhid)
	p.nhid = 0
}

// setNexthops switches the route mode of every peer; each route is
// marked dirty, so the next pass replaces it in place.
func (d *desiredState) setNexthops(on bool) {
	if d.nexthops == on {
		return
	}
	for _, p := range d.peers {
		d.unclaimNexthop(p)
	}
	d.nexthops = on
	for _, p := range d.peers {
		d.claimNexthop(p)
		d.dirty.route.add(routeKeyOf(p.subnet, 0))
	}
}
