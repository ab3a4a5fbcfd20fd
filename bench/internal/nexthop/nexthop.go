// Package nexthop writes Linux nexthop objects (RTM_NEWNEXTHOP, kernel
// 5.3+) and routes that use them (RTA_NH_ID), which
// vishvananda/netlink v1.3.1 has no API for. The benchmarks use it to
// compare `<subnet> via <gw> dev flannel.1 onlink` routes with
// `<subnet> nhid <id>` routes whose nexthop is `via <gw> dev flannel.1
// onlink`: the same forwarding, a different kernel representation.
package nexthop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtaNHID is RTA_NH_ID (include/uapi/linux/rtnetlink.h); x/sys/unix does
// not define it.
const rtaNHID = 30

// Conn is a NETLINK_ROUTE socket opened inside one namespace.
type Conn struct {
	sockets map[int]*nl.SocketHandle
}

// Open opens a socket inside the named namespace. Close it.
func Open(namespace string) (*Conn, error) {
	target, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", namespace, err)
	}
	defer target.Close()
	cur, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	defer cur.Close()
	s, err := nl.GetNetlinkSocketAt(target, cur, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in netns %s: %w", namespace, err)
	}
	return &Conn{sockets: map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}}, nil
}

// Close closes the socket.
func (c *Conn) Close() {
	for _, s := range c.sockets {
		s.Close()
	}
}

// nhmsg is struct nhmsg: family, scope, protocol, reserved, flags (u32).
type nhmsg struct {
	family, scope, protocol uint8
	flags                   uint32
}

func (m nhmsg) Len() int { return 8 }

func (m nhmsg) Serialize() []byte {
	b := make([]byte, 8)
	b[0], b[1], b[2] = m.family, m.scope, m.protocol
	binary.NativeEndian.PutUint32(b[4:], m.flags)
	return b
}

func u32Attr(typ int, v uint32) *nl.RtAttr {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return nl.NewRtAttr(typ, b)
}

// ReplaceNexthop is `ip nexthop replace id <id> via <gw> dev <link> onlink`.
func (c *Conn) ReplaceNexthop(id uint32, gw netip.Addr, link int) error {
	if id == 0 || !gw.Is4() {
		return fmt.Errorf("nexthop id %d via %s: want a non-zero id and an IPv4 gateway", id, gw)
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.Sockets = c.sockets
	req.AddData(nhmsg{family: unix.AF_INET, protocol: unix.RTPROT_BOOT, flags: unix.RTNH_F_ONLINK})
	req.AddData(u32Attr(unix.NHA_ID, id))
	req.AddData(u32Attr(unix.NHA_OIF, uint32(link)))
	g := gw.As4()
	req.AddData(nl.NewRtAttr(unix.NHA_GATEWAY, g[:]))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("nexthop replace id %d via %s dev %d onlink: %w", id, gw, link, err)
	}
	return nil
}

// ReplaceRoute is `ip route replace <dst> nhid <id>` in the main table,
// protocol boot like the classic routes.
func (c *Conn) ReplaceRoute(dst netip.Prefix, id uint32) error {
	if !dst.Addr().Is4() {
		return fmt.Errorf("route %s nhid %d: want an IPv4 destination", dst, id)
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.Sockets = c.sockets
	msg := nl.NewRtMsg() // main table, protocol boot, scope universe, unicast
	msg.Family = unix.AF_INET
	msg.Dst_len = uint8(dst.Bits())
	req.AddData(msg)
	d := dst.Addr().As4()
	req.AddData(nl.NewRtAttr(unix.RTA_DST, d[:]))
	req.AddData(u32Attr(rtaNHID, id))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("route replace %s nhid %d: %w", dst, id, err)
	}
	return nil
}

// Supported reports whether the kernel of the namespace knows nexthop
// objects, by dumping them: kernels without support reject the request.
func (c *Conn) Supported() (bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP)
	req.Sockets = c.sockets
	req.AddData(nhmsg{family: unix.AF_UNSPEC})
	_, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEXTHOP)
	switch {
	case err == nil:
		return true, nil
	case isUnsupported(err):
		return false, nil
	}
	return false, fmt.Errorf("dump nexthops: %w", err)
}

// isUnsupported matches the errnos of kernels (or configs) without
// nexthop objects.
func isUnsupported(err error) bool {
	for _, e := range []error{unix.EOPNOTSUPP, unix.EINVAL, unix.EAFNOSUPPORT, unix.EPROTONOSUPPORT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
