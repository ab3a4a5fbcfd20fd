package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// DialIn connects from inside namespace ns; addr must be an IP literal
// with port (no name resolution happens in the namespace).
func DialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	conn, err := netnsutil.In(ns, func() (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, network, addr) })
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from netns %s: %w", network, addr, ns, err)
	}
	return conn, nil
}

// HTTPClient returns a client whose connections start inside ns, e.g. to
// reach an agent's health server or etcd through the proxy.
func HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialIn(ctx, ns, network, addr)
			},
		},
	}
}

// GetIn performs a GET from inside ns and returns the status and body.
func GetIn(ctx context.Context, ns, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := HTTPClient(ns).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s from netns %s: %w", url, ns, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("GET %s from netns %s: read body: %w", url, ns, err)
	}
	return resp.StatusCode, string(body), nil
}

// WaitReady polls n's agent /readyz (see OverlaydArgs) until it answers
// 200; it fails early when the node's latest agent exits.
func (l *Lab) WaitReady(ctx context.Context, n *Node) error {
	tick := time.NewTicker(subnetFilePoll)
	defer tick.Stop()
	var last error
	for {
		status, _, err := GetIn(ctx, n.NS, n.HealthzURL()+"/readyz")
		if err == nil && status == http.StatusOK {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("status %d", status)
		}
		if a := l.Agent(n); a != nil && a.Exited() {
			return fmt.Errorf("node %s: agent exited (%v) before ready; log tail:\n%s", n.Name, a.Wait(), a.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: wait for /readyz: %w (last: %v)", n.Name, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
