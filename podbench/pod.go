// Package podbench is `overlayd bench`: a network namespace with an
// address from this node's pod subnet, plugged into cni0 like a pod,
// that measures latency and throughput to the same on peers (started
// there by `overlayd bench --serve`), and reports with the pod latency
// bench's report code (bench/podlat/report). It removes what it made.
package podbench

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Bridge is the pods' bridge the bench pod is plugged into.
const Bridge = "cni0"

// Pod is the bench's pod: a namespace whose eth0 is a veth on cni0.
type Pod struct {
	NS   string
	IP   netip.Addr
	veth string // host side
}

// PodAddr is the bench pod's address in subnet: the last usable address
// for the server, the one before it for the client (host-local hands
// pods addresses from the bottom of the range).
func PodAddr(subnet netip.Prefix, server bool) netip.Addr {
	a := subnet.Masked().Addr().As4()
	host := uint32(1)<<(32-subnet.Bits()) - 2 // broadcast - 1
	if !server {
		host--
	}
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// NewPod makes the namespace, plugs it into cni0 with ip/len(subnet) and
// a default route via cni0's address, in the calling namespace (the
// node's).
func NewPod(subnet netip.Prefix, ip netip.Addr) (*Pod, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("bench pod: netlink: %w", err)
	}
	defer h.Close()
	br, err := h.LinkByName(Bridge)
	if err != nil {
		return nil, fmt.Errorf("bench pod: no %s bridge on this node (it appears with the first pod): %w", Bridge, err)
	}
	gw, err := bridgeGateway(h, br, subnet)
	if err != nil {
		return nil, err
	}
	p := &Pod{NS: netnsutil.UniqueName("bench"), IP: ip, veth: "ovlb" + randHex(4)}
	if err := netnsutil.Create(p.NS); err != nil {
		return nil, fmt.Errorf("bench pod: %w", err)
	}
	if err := p.plug(h, br, subnet, gw); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

func bridgeGateway(h *netlink.Handle, br netlink.Link, subnet netip.Prefix) (netip.Addr, error) {
	addrs, err := h.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bench pod: addresses of %s: %w", Bridge, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && subnet.Contains(ip) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("bench pod: %s has no address in this node's subnet %s", Bridge, subnet)
}

func (p *Pod) plug(h *netlink.Handle, br netlink.Link, subnet netip.Prefix, gw netip.Addr) error {
	target, err := netns.GetFromName(p.NS)
	if err != nil {
		return fmt.Errorf("bench pod: open netns %s: %w", p.NS, err)
	}
	defer target.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex = p.veth, br.Attrs().MTU, br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(target))}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("bench pod: add veth %s: %w", p.veth, err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("bench pod: up %s: %w", p.veth, err)
	}
	ph, err := netnsutil.Handle(p.NS)
	if err != nil {
		return err
	}
	defer ph.Close()
	eth0, err := ph.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("bench pod: eth0 in %s: %w", p.NS, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.IP.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := ph.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("bench pod: address %s: %w", p.IP, err)
	}
	if err := ph.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("bench pod: up eth0: %w", err)
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}
	if err := ph.RouteAdd(route); err != nil {
		return fmt.Errorf("bench pod: default route via %s: %w", gw, err)
	}
	return nil
}

// Close removes the namespace (its eth0, and so the veth, with it).
func (p *Pod) Close() error {
	err := netnsutil.Delete(p.NS)
	if h, herr := netlink.NewHandle(); herr == nil {
		if l, lerr := h.LinkByName(p.veth); lerr == nil {
			h.LinkDel(l)
		}
		h.Close()
	}
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:2*n-1]
}
