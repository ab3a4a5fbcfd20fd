package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsLinks configures links, addresses and routes inside one namespace
// through a netlink handle bound to it.
type nsLinks struct {
	ns string
	h  *netlink.Handle
}

func openLinks(ns string) (*nsLinks, error) {
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return nil, err
	}
	return &nsLinks{ns: ns, h: h}, nil
}

func (n *nsLinks) Close() { n.h.Close() }

func (n *nsLinks) link(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("in netns %s: find link %s: %w", n.ns, name, err)
	}
	return l, nil
}

// addBridge creates a bridge and pins its MTU (a bridge whose MTU was
// set explicitly does not follow its ports').
func (n *nsLinks) addBridge(name string, mtu int) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := n.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("in netns %s: add bridge %s: %w", n.ns, name, err)
	}
	br, err := n.link(name)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetMTU(br, mtu); err != nil {
		return fmt.Errorf("in netns %s: set mtu %d on %s: %w", n.ns, mtu, name, err)
	}
	return nil
}

// addVeth creates a veth pair: name stays here, peer is created directly
// inside peerNS. Both ends get mtu.
func (n *nsLinks) addVeth(name, peer, peerNS string, mtu int) error {
	target, err := netns.GetFromName(peerNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", peerNS, err)
	}
	defer target.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      peer,
		PeerMTU:       uint32(mtu),
		PeerNamespace: netlink.NsFd(int(target)),
	}
	if err := n.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("in netns %s: add veth %s (peer %s in %s): %w", n.ns, name, peer, peerNS, err)
	}
	return nil
}

func (n *nsLinks) enslave(name, master string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	m, err := n.link(master)
	if err != nil {
		return err
	}
	if err := n.h.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("in netns %s: enslave %s to %s: %w", n.ns, name, master, err)
	}
	return nil
}

func (n *nsLinks) addAddr(name string, p netip.Prefix) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// No duplicate address detection: the lab's addresses are unique,
		// and a tentative address cannot be bound or used as a source.
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := n.h.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("in netns %s: add address %s to %s: %w", n.ns, p, name, err)
	}
	return nil
}

func (n *nsLinks) up(names ...string) error {
	for _, name := range names {
		l, err := n.link(name)
		if err != nil {
			return err
		}
		if err := n.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("in netns %s: set %s up: %w", n.ns, name, err)
		}
	}
	return nil
}

func (n *nsLinks) defaultRoute(gw netip.Addr) error {
	r := &netlink.Route{Gw: gw.AsSlice()}
	if err := n.h.RouteAdd(r); err != nil {
		return fmt.Errorf("in netns %s: add default route via %s: %w", n.ns, gw, err)
	}
	return nil
}

// enableForwarding sets net.ipv4.ip_forward=1 and IPv6 forwarding; the
// sysctls are per namespace, so this never affects the root namespace.
func enableForwarding(ctx context.Context, ns string) error {
	_, err := netnsutil.Exec(ctx, ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return err
}

// withLinks opens a handle on ns, runs fn and closes the handle.
func withLinks(ns string, fn func(*nsLinks) error) error {
	l, err := openLinks(ns)
	if err != nil {
		return err
	}
	defer l.Close()
	return fn(l)
}
