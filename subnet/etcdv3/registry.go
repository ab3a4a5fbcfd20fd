package etcdv3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/overlayd/overlayd/subnet"
)

// DefaultDialTimeout is used when Options.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Options configure New.
type Options struct {
	// Endpoints are etcd client URLs, e.g. https://10.0.0.1:2379.
	Endpoints []string
	// Prefix is the flannel key prefix; subnet.DefaultPrefix when empty.
	Prefix string
	// CAFile, CertFile and KeyFile enable TLS. CertFile and KeyFile go
	// together. An https endpoint without CAFile uses the system roots.
	CAFile, CertFile, KeyFile string
	// Username and Password enable etcd authentication.
	Username, Password string
	// DialTimeout bounds etcd's connection-time requests (auth token) and
	// the best-effort clean-ups this package does; DefaultDialTimeout when 0.
	DialTimeout time.Duration
	// Logger receives this package's and the etcd client's logs; nil
	// discards them.
	Logger *slog.Logger
}

// Registry is a subnet.Registry on the etcd v3 API. It is safe for
// concurrent use.
type Registry struct {
	client      *clientv3.Client
	prefix      string
	logger      *slog.Logger
	now         func() time.Time
	cleanupTime time.Duration
	granted     *grantedLeases
}

var _ subnet.Registry = (*Registry)(nil)

// New builds an etcd v3 client for o. It does not wait for etcd to answer:
// the first request does. ctx only carries values: the client lives until
// Close.
func New(ctx context.Context, o Options) (*Registry, error) {
	o = withDefaults(o)
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd v3: no endpoints given")
	}
	tlsConfig, err := loadTLS(o)
	if err != nil {
		return nil, fmt.Errorf("etcd v3 TLS: %w", err)
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: o.DialTimeout,
		// Ping while a watch is open, so a silently dead connection (a
		// partition, a vanished NAT entry) ends in a reconnect instead of a
		// watch that never delivers again. 10s stays above etcd's
		// --grpc-keepalive-min-time (5s).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsConfig,
		Username:             o.Username,
		Password:             o.Password,
		Context:              context.WithoutCancel(ctx),
		Logger:               zap.New(newSlogCore(o.Logger.With("component", "etcd-client"))),
	})
	probe := newConnProbe(o, tlsConfig)
	if err != nil {
		return nil, fmt.Errorf("etcd v3 client for %s: %w", strings.Join(o.Endpoints, ","), probe.explain(ctx, err))
	}
	client.KV = explainingKV{KV: client.KV, probe: probe}
	return newRegistry(client, o), nil
}

func withDefaults(o Options) Options {
	if o.Prefix == "" {
		o.Prefix = subnet.DefaultPrefix
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func newRegistry(client *clientv3.Client, o Options) *Registry {
	return &Registry{
		client:      client,
		prefix:      o.Prefix,
		logger:      o.Logger,
		now:         time.Now,
		cleanupTime: o.DialTimeout,
		granted:     newGrantedLeases(),
	}
}

// Close closes the etcd client. Leases stay in etcd: they must survive a
// restart.
func (r *Registry) Close() error {
	if err := r.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd v3 close: %w", err)
	}
	return nil
}

// Prefix returns the key prefix in use.
func (r *Registry) Prefix() string { return r.prefix }

// cleanupContext is for best-effort clean-ups (revoking a grant) that must
// run even when the caller's context has just been canceled.
func (r *Registry) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.cleanupTime)
}
