package lab

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

const proxyDialTimeout = 5 * time.Second

// proxy forwards every TCP connection accepted on a listener inside the
// hub namespace to etcd on root loopback.
type proxy struct {
	ln  net.Listener
	log *slog.Logger
	wg  sync.WaitGroup

	mu      sync.Mutex
	target  string // host:port in the root namespace
	blocked bool
	closed  bool
	conns   map[net.Conn]struct{}
}

// startProxy listens at HubIP:2379 inside the hub and sets EtcdURL.
func (l *Lab) startProxy() error {
	u, target, err := parseEndpoint(l.opts.EtcdEndpoint)
	if err != nil {
		return err
	}
	listen := netip.AddrPortFrom(l.HubIP, etcdPort).String()
	ln, err := netnsutil.In(l.Hub, func() (net.Listener, error) { return net.Listen("tcp", listen) })
	if err != nil {
		return fmt.Errorf("etcd proxy: listen on %s in netns %s: %w", listen, l.Hub, err)
	}
	p := &proxy{ln: ln, log: l.log, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve(ln)
	l.mu.Lock()
	l.proxy = p
	l.mu.Unlock()
	l.EtcdURL = fmt.Sprintf("%s://%s", u.Scheme, listen)
	return nil
}

// parseEndpoint accepts http(s)://host:port and returns the URL and host:port.
func parseEndpoint(endpoint string) (*url.URL, string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("etcd endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		return nil, "", fmt.Errorf("etcd endpoint %q: want http(s)://host:port", endpoint)
	}
	return u, u.Host, nil
}

func (p *proxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *proxy) forward(client net.Conn) {
	defer p.wg.Done()
	target, ok := p.admit(client)
	if !ok {
		client.Close()
		return
	}
	defer p.drop(client)
	server, err := net.DialTimeout("tcp", target, proxyDialTimeout)
	if err != nil {
		p.log.Warn("etcd proxy: dial", "target", target, "err", err)
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.drop(server)
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); done <- struct{}{} }()
	go func() { io.Copy(client, server); done <- struct{}{} }()
	<-done
	client.Close()
	server.Close()
	<-done
}

// admit registers an accepted connection unless the proxy is blocked,
// closed or no longer listening, and returns the current target.
func (p *proxy) admit(c net.Conn) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.blocked || p.ln == nil {
		return "", false
	}
	p.conns[c] = struct{}{}
	return p.target, true
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.blocked {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cutLocked closes every open connection; p.mu is held.
func (p *proxy) cutLocked() {
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
	p.cutLocked()
}

func (p *proxy) setBlocked(blocked bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = blocked
	if blocked {
		p.cutLocked()
	}
}

// stopListening closes the listener (its serve goroutine ends) and every
// open connection; listen starts again.
func (p *proxy) stopListening() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close() // first: a client that reconnects at once is refused
		p.ln = nil
	}
	p.cutLocked()
}

// listen serves a new listener, after stopListening.
func (p *proxy) listen(ln net.Listener) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ln != nil {
		ln.Close()
		return fmt.Errorf("lab proxy on %s: closed or already listening", ln.Addr())
	}
	p.ln = ln
	p.wg.Add(1)
	go p.serve(ln)
	return nil
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cutLocked()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.wg.Wait()
}

// SetEtcdEndpoint points the proxy at another root-loopback etcd (after
// etcdtest.Server.Restart, whose port may change) and drops every open
// connection, as a failover would.
func (l *Lab) SetEtcdEndpoint(endpoint string) error {
	_, target, err := parseEndpoint(endpoint)
	if err != nil {
		return err
	}
	l.mu.Lock()
	p := l.proxy
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("set etcd endpoint %s: lab has no proxy", endpoint)
	}
	p.setTarget(target)
	return nil
}

// SetEtcdReachable cuts (false) or restores (true) every node's access to
// etcd: open connections are dropped and new ones refused while cut.
func (l *Lab) SetEtcdReachable(reachable bool) {
	l.mu.Lock()
	p := l.proxy
	l.mu.Unlock()
	if p != nil {
		p.setBlocked(!reachable)
	}
}
