package lab

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TCPProxy is a generic TCP forwarder in the hub, like the etcd proxy:
// the nodes dial Addr, which reaches a server on root loopback (a
// kube-apiserver, for instance). Close it; Lab.Close does not.
type TCPProxy struct {
	// Addr is HubIP:listenPort, where the nodes connect.
	Addr netip.AddrPort
	hub  string // the namespace it listens in
	p    *proxy
}

// Proxy listens at HubIP:listenPort inside the hub and forwards every
// connection to target (host:port in the root namespace).
func (l *Lab) Proxy(listenPort uint16, target string) (*TCPProxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("lab proxy to %q: want host:port: %w", target, err)
	}
	addr := netip.AddrPortFrom(l.HubIP, listenPort)
	ln, err := netnsutil.In(l.Hub, func() (net.Listener, error) { return net.Listen("tcp", addr.String()) })
	if err != nil {
		return nil, fmt.Errorf("lab proxy: listen on %s in netns %s: %w", addr, l.Hub, err)
	}
	p := &proxy{ln: ln, log: l.log, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve(ln)
	return &TCPProxy{Addr: addr, hub: l.Hub, p: p}, nil
}

// URL is scheme://Addr, e.g. https://192.0.2.1:6443.
func (t *TCPProxy) URL(scheme string) string {
	return scheme + "://" + net.JoinHostPort(t.Addr.Addr().String(), strconv.Itoa(int(t.Addr.Port())))
}

// SetReachable cuts (false) or restores (true) the nodes' access: open
// connections are dropped and new ones refused while cut.
func (t *TCPProxy) SetReachable(reachable bool) { t.p.setBlocked(!reachable) }

// Close stops the proxy and closes every connection.
func (t *TCPProxy) Close() { t.p.Close() }

// SetListening closes (false) or opens again (true) the listening
// socket. While it is closed the nodes' connections are refused, as by
// a server that is down, and open ones are dropped; unlike SetReachable
// (which accepts and then closes), a client sees "connection refused".
func (t *TCPProxy) SetListening(listening bool) error {
	if !listening {
		t.p.stopListening()
		return nil
	}
	ln, err := netnsutil.In(t.hub, func() (net.Listener, error) { return net.Listen("tcp", t.Addr.String()) })
	if err != nil {
		return fmt.Errorf("lab proxy: listen again on %s in netns %s: %w", t.Addr, t.hub, err)
	}
	return t.p.listen(ln)
}
