package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHTTPServerLimits: the daemon's servers carry every timeout and a
// header cap (a zero one means "forever").
func TestHTTPServerLimits(t *testing.T) {
	srv := defaultHTTPLimits.server(http.NewServeMux())
	for name, v := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if v <= 0 {
			t.Errorf("%s is %s: connections can be held forever", name, v)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes %d, want a small positive cap", srv.MaxHeaderBytes)
	}
}

// TestHTTPConnectionsNotHeld: an idle keep-alive connection and one that
// never finishes its request are closed by the server.
func TestHTTPConnectionsNotHeld(t *testing.T) {
	limits := defaultHTTPLimits
	limits.readHeader, limits.read, limits.idle = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	tests := []struct {
		name string
		send string
	}{
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unfinished request", "GET /healthz HTTP/1.1\r\nHost: x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr, err := serveHTTPLimited(ctx, "127.0.0.1:0", healthMux(&readiness{}), limits, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			if strings.HasSuffix(tt.send, "\r\n\r\n") {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// The server must close the connection long before our deadline.
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatalf("connection still held after 10s: %v", err)
			}
		})
	}
}

// TestReadyzFencedWhileLeaseExpired: /readyz answers 503, naming the
// expired lease, while the lease is marked expired, and 200 again after.
func TestReadyzFencedWhileLeaseExpired(t *testing.T) {
	var ready readiness
	mux := healthMux(&ready)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		name     string
		act      func()
		code     int
		contains string
	}{
		{"before the subnet file", func() {}, 503, "subnet file"},
		{"file written", ready.set, 200, "ok"},
		{"lease expired", func() { ready.setExpired(true) }, 503, "lease expired"},
		{"renewed", func() { ready.setExpired(false) }, 200, "ok"},
	}
	for _, tt := range tests {
		tt.act()
		if code, body := get(); code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("%s: /readyz %d %q, want %d containing %q", tt.name, code, body, tt.code, tt.contains)
		}
	}
}

// TestMetricsUncompressed: /metrics answers uncompressed even to a client
// that accepts gzip, so that no gzip writer (about 1.5 MiB of deflate
// state) stays pooled in the daemon between scrapes.
func TestMetricsUncompressed(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "overlayd_test_total", Help: "test"}))
	mux := metricsMux(&readiness{}, reg, func() any { return nil }, false)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if enc := rec.Header().Get("Content-Encoding"); enc != "" {
		t.Errorf("Content-Encoding %q, want none", enc)
	}
	if !strings.Contains(rec.Body.String(), "overlayd_test_total 0") {
		t.Errorf("body %q lacks the metric", rec.Body.String())
	}
}
