// Package fakepeers generates the fake peer nodes the benchmarks program:
// distinct subnets of a flannel network, distinct VTEP MACs and public
// addresses cycling over TEST-NET-2 and TEST-NET-3 (they are only FDB
// destinations; no traffic is ever sent to them).
package fakepeers

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// Peer is one fake node.
type Peer struct {
	Subnet   netip.Prefix
	PublicIP netip.Addr
	MAC      [6]byte
	// Subnet6, PublicIP6 and MAC6 are a dual-stack peer's IPv6 half
	// (NewDualGenerator), Subnet6 invalid otherwise.
	Subnet6   netip.Prefix
	PublicIP6 netip.Addr
	MAC6      [6]byte
}

// Gateway6 is the IPv6 route's gateway and neighbour address.
func (p Peer) Gateway6() netip.Addr { return p.Subnet6.Addr() }

// HardwareAddr6 is the IPv6 VTEP MAC as a net.HardwareAddr.
func (p Peer) HardwareAddr6() net.HardwareAddr { return net.HardwareAddr(p.MAC6[:]) }

// Gateway is the route's gateway and the neighbour's address: the
// subnet's network address, as flannel programs it.
func (p Peer) Gateway() netip.Addr { return p.Subnet.Addr() }

// HardwareAddr is the VTEP MAC as a net.HardwareAddr.
func (p Peer) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(p.MAC[:]) }

// LeaseValue is the peer's lease as flanneld v0.28 writes it (VNI 1),
// with PublicIPv6 and BackendV6Data for a dual-stack peer.
func (p Peer) LeaseValue() ([]byte, error) {
	data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: p.HardwareAddr()}, true)
	if err != nil {
		return nil, err
	}
	attrs := subnet.LeaseAttrs{PublicIP: p.PublicIP, BackendType: subnet.BackendVXLAN, BackendData: data}
	if p.Subnet6.IsValid() {
		data6, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: p.HardwareAddr6()}, true)
		if err != nil {
			return nil, err
		}
		attrs.PublicIPv6, attrs.BackendV6Data = p.PublicIP6, data6
	}
	return subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
}

// LeaseKey is the peer's etcd key under prefix (the dual-stack form for a
// dual-stack peer).
func (p Peer) LeaseKey(prefix string) string {
	return subnet.LeaseIDKey(prefix, subnet.LeaseID{Subnet: p.Subnet, IPv6Subnet: p.Subnet6})
}

// Generator hands out peers one after another. It is not safe for
// concurrent use.
type Generator struct {
	network   netip.Prefix
	subnetLen int
	next      uint32 // index of the next subnet; 0 (the network's first) is never used
	limit     uint32
	skip      map[netip.Prefix]bool
	// network6 is set by NewDualGenerator: peer i also gets the i-th
	// /64 of it.
	network6 netip.Prefix
}

// NewDualGenerator is NewGenerator for dual-stack peers: each also gets
// an IPv6 /64 of network6 (at most /48), an IPv6 public address in
// 2001:db8:ffff::/64 and an IPv6 VTEP MAC; at most 65,535 peers.
func NewDualGenerator(network netip.Prefix, subnetLen int, network6 netip.Prefix) (*Generator, error) {
	g, err := NewGenerator(network, subnetLen)
	if err != nil {
		return nil, err
	}
	if !network6.Addr().Is6() || network6 != network6.Masked() || network6.Bits() > 48 {
		return nil, fmt.Errorf("fake peers: IPv6 network %s is not a masked IPv6 prefix of /48 or shorter", network6)
	}
	g.network6 = network6
	g.limit = min(g.limit, 1<<16) // subnet6At's 16 bits
	return g, nil
}

// NewGenerator cuts network into /subnetLen subnets.
func NewGenerator(network netip.Prefix, subnetLen int) (*Generator, error) {
	if !network.Addr().Is4() || network != network.Masked() {
		return nil, fmt.Errorf("fake peers: network %s is not a masked IPv4 prefix", network)
	}
	if subnetLen <= network.Bits() || subnetLen > 30 {
		return nil, fmt.Errorf("fake peers: subnet length %d does not fit network %s", subnetLen, network)
	}
	return &Generator{network: network, subnetLen: subnetLen, next: 1,
		limit: 1 << (subnetLen - network.Bits()), skip: map[netip.Prefix]bool{}}, nil
}

// Skip makes the generator never hand out s (e.g. the node's own lease).
func (g *Generator) Skip(s netip.Prefix) { g.skip[s.Masked()] = true }

// Next returns the next peer.
func (g *Generator) Next() (Peer, error) {
	for ; g.next < g.limit; g.next++ {
		i := g.next
		s := g.subnetAt(i)
		if g.skip[s] {
			continue
		}
		g.next++
		p := Peer{Subnet: s, PublicIP: publicIPAt(i), MAC: macAt(i)}
		if g.network6.IsValid() {
			p.Subnet6, p.PublicIP6, p.MAC6 = g.subnet6At(i), publicIP6At(i), mac6At(i)
		}
		return p, nil
	}
	return Peer{}, fmt.Errorf("fake peers: network %s has no /%d subnet left", g.network, g.subnetLen)
}

// Take returns the next n peers.
func (g *Generator) Take(n int) ([]Peer, error) {
	peers := make([]Peer, 0, n)
	for range n {
		p, err := g.Next()
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	return peers, nil
}

func (g *Generator) subnetAt(i uint32) netip.Prefix {
	base := g.network.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += i << (32 - g.subnetLen)
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, g.subnetLen)
}

// publicIPAt cycles over 198.51.100.1-254 and 203.0.113.1-254.
func publicIPAt(i uint32) netip.Addr {
	host := byte(i%254) + 1
	if (i/254)%2 == 0 {
		return netip.AddrFrom4([4]byte{198, 51, 100, host})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, host})
}

// subnet6At is the i-th /64 of the IPv6 network: 16 bits of index after
// the /48 (NewDualGenerator keeps i below 65,536).
func (g *Generator) subnet6At(i uint32) netip.Prefix {
	b := g.network6.Addr().As16()
	b[6], b[7] = byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// publicIP6At is 2001:db8:ffff::<i+1>: only an FDB destination.
func publicIP6At(i uint32) netip.Addr {
	b := netip.MustParseAddr("2001:db8:ffff::").As16()
	v := i + 1
	b[12], b[13], b[14], b[15] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return netip.AddrFrom16(b)
}

// mac6At is macAt with another second byte: the IPv6 device's MAC.
func mac6At(i uint32) [6]byte {
	m := macAt(i)
	m[1] = 0x06
	return m
}

// macAt is a locally administered unicast MAC unique per index.
func macAt(i uint32) [6]byte {
	return [6]byte{0x0e, 0x00, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}
