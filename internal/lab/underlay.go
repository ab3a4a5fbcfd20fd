package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

const (
	hubBridge = "br0"
	// NAT router interfaces: the site bridge the nodes attach to, and
	// the uplink to the hub carrying the public addresses.
	routerLAN = "lan0"
	routerWAN = "wan0"
)

// buildHub creates the hub namespace with its bridge at ip/24 (and
// flatHubIP6/64 with Options.Underlay6; only that one with NoUnderlay4).
func (l *Lab) buildHub(ip netip.Addr) error {
	hub, err := l.createNS("hub")
	if err != nil {
		return err
	}
	var addrs []netip.Addr
	if !l.opts.NoUnderlay4 {
		addrs = append(addrs, ip)
	}
	if l.opts.Underlay6 {
		addrs = append(addrs, flatHubIP6)
	}
	l.Hub, l.HubIP = hub, addrs[0]
	l.EtcdURL = fmt.Sprintf("http://%s", netip.AddrPortFrom(l.HubIP, etcdPort))
	return withLinks(hub, func(h *nsLinks) error {
		if err := h.addBridge(hubBridge, underlayMTU); err != nil {
			return err
		}
		for _, a := range addrs {
			if err := h.addAddr(hubBridge, underlayPrefix(a)); err != nil {
				return err
			}
		}
		return h.up(hubBridge)
	})
}

// buildFlat: every node's ul0 is plugged into the hub bridge.
func (l *Lab) buildFlat(ctx context.Context) error {
	if err := l.buildHub(flatHubIP); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := l.attachNode(ctx, n, l.Hub, hubBridge, flatHubIP); err != nil {
			return err
		}
	}
	return nil
}

// nodeAddrs are n's underlay addresses with their default gateways: IPv4
// unless Options.NoUnderlay4, IPv6 with Options.Underlay6.
func (l *Lab) nodeAddrs(n *Node, gw netip.Addr) [][2]netip.Addr {
	var out [][2]netip.Addr
	if !l.opts.NoUnderlay4 {
		out = append(out, [2]netip.Addr{n.UnderlayIP, gw})
	}
	if n.UnderlayIP6.IsValid() {
		out = append(out, [2]netip.Addr{n.UnderlayIP6, flatHubIP6})
	}
	return out
}

// buildNAT: one router per site on the hub, nodes behind their router.
func (l *Lab) buildNAT(ctx context.Context, sites [][]int) error {
	if err := l.buildHub(natHubIP); err != nil {
		return err
	}
	for s, members := range sites {
		router, err := l.buildRouter(ctx, s, members)
		if err != nil {
			return err
		}
		for _, i := range members {
			n := l.Nodes[i]
			n.Router = router
			if err := l.attachNode(ctx, n, router, routerLAN, natRouterInside); err != nil {
				return err
			}
		}
	}
	return nil
}

// attachNode creates the node namespace and its ul0, whose peer (named
// n<index>) is enslaved to bridge inside upstream.
func (l *Lab) attachNode(ctx context.Context, n *Node, upstream, bridge string, gw netip.Addr) error {
	ns, err := l.createNS(fmt.Sprintf("n%d", n.Index))
	if err != nil {
		return err
	}
	n.NS = ns
	peer := fmt.Sprintf("n%d", n.Index)
	err = withLinks(ns, func(h *nsLinks) error {
		if err := h.addVeth(n.Iface, peer, upstream, underlayMTU); err != nil {
			return err
		}
		addrs := l.nodeAddrs(n, gw)
		for _, a := range addrs {
			if err := h.addAddr(n.Iface, underlayPrefix(a[0])); err != nil {
				return err
			}
		}
		if err := h.up(n.Iface); err != nil {
			return err
		}
		for _, a := range addrs {
			if err := h.defaultRoute(a[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := plugIntoBridge(upstream, peer, bridge); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := enableForwarding(ctx, ns); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

func plugIntoBridge(ns, port, bridge string) error {
	return withLinks(ns, func(h *nsLinks) error {
		if err := h.enslave(port, bridge); err != nil {
			return err
		}
		return h.up(port)
	})
}

// buildRouter creates site s's router: wan0 on the hub carrying one
// public address per member, lan0 (a bridge) inside, forwarding and the
// 1:1 NAT rules.
func (l *Lab) buildRouter(ctx context.Context, s int, members []int) (string, error) {
	router, err := l.createNS(fmt.Sprintf("r%d", s))
	if err != nil {
		return "", err
	}
	l.Routers = append(l.Routers, router)
	uplink := fmt.Sprintf("r%d", s)
	err = withLinks(router, func(h *nsLinks) error {
		if err := h.addVeth(routerWAN, uplink, l.Hub, underlayMTU); err != nil {
			return err
		}
		for _, i := range members {
			if err := h.addAddr(routerWAN, prefix24(l.Nodes[i].PublicIP)); err != nil {
				return err
			}
		}
		if err := h.addBridge(routerLAN, underlayMTU); err != nil {
			return err
		}
		if err := h.addAddr(routerLAN, prefix24(natRouterInside)); err != nil {
			return err
		}
		return h.up(routerWAN, routerLAN)
	})
	if err == nil {
		err = plugIntoBridge(l.Hub, uplink, hubBridge)
	}
	if err == nil {
		err = enableForwarding(ctx, router)
	}
	if err == nil {
		err = l.installNAT(ctx, router, members)
	}
	if err != nil {
		return "", fmt.Errorf("router of site %d: %w", s, err)
	}
	return router, nil
}

// installNAT loads the router's 1:1 NAT table with iptables-restore
// inside the router namespace.
func (l *Lab) installNAT(ctx context.Context, router string, members []int) error {
	var pairs []natPair
	for _, i := range members {
		pairs = append(pairs, natPair{private: l.Nodes[i].UnderlayIP, public: l.Nodes[i].PublicIP})
	}
	cmd := netnsutil.Command(ctx, router, "iptables-restore", "-w", "5")
	cmd.Stdin = strings.NewReader(natRules(pairs))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("in netns %s: iptables-restore: %w: %s", router, err, strings.TrimSpace(string(out)))
	}
	return nil
}

type natPair struct{ private, public netip.Addr }

// natRules is the router's nat table: traffic for a public address goes
// to its node; the node's traffic leaves with its public address. The
// last rule covers hairpinning (a node reaching a site neighbour by its
// public address): the packet then also carries the sender's public
// address, as a cloud's NAT gateway does.
func natRules(pairs []natPair) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	inside := prefix24(natRouterInside).Masked()
	for _, p := range pairs {
		fmt.Fprintf(&b, "-A PREROUTING -d %s/32 -j DNAT --to-destination %s\n", p.public, p.private)
		fmt.Fprintf(&b, "-A OUTPUT -d %s/32 -j DNAT --to-destination %s\n", p.public, p.private)
		fmt.Fprintf(&b, "-A POSTROUTING -s %s/32 -o %s -j SNAT --to-source %s\n", p.private, routerWAN, p.public)
		fmt.Fprintf(&b, "-A POSTROUTING -s %s/32 -d %s -m conntrack --ctstate DNAT -j SNAT --to-source %s\n", p.private, inside, p.public)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
