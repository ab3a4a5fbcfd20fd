package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness is set once the subnet file is written (flannel's /readyz),
// and withdrawn while our lease has expired without a renewal (fencing:
// another node may hold our subnet).
type readiness struct{ ready, expired atomic.Bool }

func (r *readiness) set()                    { r.ready.Store(true) }
func (r *readiness) setExpired(expired bool) { r.expired.Store(expired) }
func (r *readiness) fileWritten() bool       { return r.ready.Load() }
func (r *readiness) isReady() bool           { return r.ready.Load() && !r.expired.Load() }

// notReadyReason says why isReady is false.
func (r *readiness) notReadyReason() string {
	if r.expired.Load() {
		return "not ready: our subnet lease expired without a renewal (etcd unreachable?); another node may be given our subnet"
	}
	return "not ready: subnet file not written yet"
}

// statusFunc returns the document served at /status.
type statusFunc func() any

func healthMux(ready *readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.isReady() {
			http.Error(w, ready.notReadyReason(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

func metricsMux(ready *readiness, gatherer prometheus.Gatherer, status statusFunc, withHealth bool) *http.ServeMux {
	mux := http.NewServeMux()
	if withHealth {
		hm := healthMux(ready)
		mux.Handle("/healthz", hm)
		mux.Handle("/readyz", hm)
	}
	// Uncompressed: a gzip writer (about 1.5 MiB of deflate state) stays
	// pooled between scrapes, and a node-local scrape gains little from it.
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{DisableCompression: true}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status())
	})
	return mux
}

// httpLimits bound what one client can hold of the HTTP servers: a slow
// or idle connection is closed, a huge header refused.
type httpLimits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

// defaultHTTPLimits: /metrics and /status of 10k peers are written well
// within write; probes reconnect after idle.
var defaultHTTPLimits = httpLimits{
	readHeader: 5 * time.Second, read: 10 * time.Second, write: 30 * time.Second,
	idle: 60 * time.Second, maxHeaderBytes: 16 << 10,
}

func (l httpLimits) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		WriteTimeout: l.write, IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes,
	}
}

// serveHTTP listens now (so a port clash is reported at start) and serves
// until ctx ends.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	_, err := serveHTTPLimited(ctx, addr, h, defaultHTTPLimits, log)
	return err
}

// serveHTTPLimited is serveHTTP with the given limits; it returns the
// address listened on.
func serveHTTPLimited(ctx context.Context, addr string, h http.Handler, limits httpLimits, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := limits.server(h)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", addr, "err", err)
		}
	}()
	log.Info("serving http", "addr", ln.Addr().String())
	return ln.Addr(), nil
}
