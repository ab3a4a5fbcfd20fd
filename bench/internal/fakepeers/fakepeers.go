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
}

// Gateway is the route's gateway and the neighbour's address: the
// subnet's network address, as flannel programs it.
func (p Peer) Gateway() netip.Addr { return p.Subnet.Addr() }

// HardwareAddr is the VTEP MAC as a net.HardwareAddr.
func (p Peer) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(p.MAC[:]) }

// LeaseValue is the peer's lease as flanneld v0.28 writes it (VNI 1).
func (p Peer) LeaseValue() ([]byte, error) {
	data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: p.HardwareAddr()}, true)
	if err != nil {
		return nil, err
	}
	return subnet.MarshalLeaseAttrs(subnet.LeaseAttrs{
		PublicIP: p.PublicIP, BackendType: subnet.BackendVXLAN, BackendData: data,
	}, subnet.FormV028)
}

// LeaseKey is the peer's etcd key under prefix.
func (p Peer) LeaseKey(prefix string) string { return subnet.LeaseKey(prefix, p.Subnet) }

// Generator hands out peers one after another. It is not safe for
// concurrent use.
type Generator struct {
	network   netip.Prefix
	subnetLen int
	next      uint32 // index of the next subnet; 0 (the network's first) is never used
	limit     uint32
	skip      map[netip.Prefix]bool
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
		return Peer{Subnet: s, PublicIP: publicIPAt(i), MAC: macAt(i)}, nil
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

// macAt is a locally administered unicast MAC unique per index.
func macAt(i uint32) [6]byte {
	return [6]byte{0x0e, 0x00, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}
