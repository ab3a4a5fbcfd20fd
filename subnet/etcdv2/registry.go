package etcdv2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv3"
)

// DefaultDialTimeout is used when Options.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Options configure New: the same type as etcdv3's, so that one set of
// flags opens either API. On v2, Username and Password are v2
// authentication, and DialTimeout bounds connecting and the TLS handshake
// to one endpoint and (twice it) waiting for a non-watch response from one
// endpoint before the next is tried; DefaultDialTimeout when 0.
type Options = etcdv3.Options

// Registry is a subnet.Registry on the etcd v2 API. It is safe for
// concurrent use.
type Registry struct {
	keys      client.KeysAPI
	transport *http.Transport
	prefix    string
	opts      Options
	logger    *slog.Logger
	// now is the local clock expirations are computed on (remaining TTL
	// added to the time before the request; see the package doc).
	now func() time.Time
}

var _ subnet.Registry = (*Registry)(nil)

// New builds an etcd v2 client for o. It does not contact etcd: the first
// request does. ctx is unused; it is there to match etcdv3.New.
func New(ctx context.Context, o Options) (*Registry, error) {
	o = withDefaults(o)
	if err := checkEndpoints(o.Endpoints); err != nil {
		return nil, err
	}
	tlsConfig, err := etcdv3.TLSConfig(toV3Options(o))
	if err != nil {
		return nil, fmt.Errorf("etcd v2 TLS: %w", err)
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer(o.DialTimeout).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: o.DialTimeout,
		MaxIdleConnsPerHost: 4,
	}
	c, err := client.New(client.Config{
		Endpoints:               o.Endpoints,
		Transport:               transport,
		Username:                o.Username,
		Password:                o.Password,
		HeaderTimeoutPerRequest: 2 * o.DialTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd v2 client for %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	return newRegistry(client.NewKeysAPI(c), transport, o), nil
}

func newRegistry(keys client.KeysAPI, transport *http.Transport, o Options) *Registry {
	return &Registry{keys: keys, transport: transport, prefix: o.Prefix, opts: o, logger: o.Logger, now: time.Now}
}

// dialer connects with TCP keepalive: a watch is one long-poll request, so
// a connection that died silently (a partition, a lost NAT entry) must be
// noticed by the kernel, after about Idle + Count*Interval (30 s).
func dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:         timeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
}

func withDefaults(o Options) Options {
	if o.Prefix == "" {
		o.Prefix = subnet.DefaultPrefix
	}
	// The v2 keyspace is rooted: etcd reports every key with a leading /.
	o.Prefix = "/" + strings.Trim(o.Prefix, "/")
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func checkEndpoints(endpoints []string) error {
	if len(endpoints) == 0 {
		return errors.New("etcd v2: no endpoints given")
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("etcd v2: endpoint %q is not an http:// or https:// URL", e)
		}
	}
	return nil
}

func toV3Options(o Options) etcdv3.Options {
	return etcdv3.Options{
		Endpoints: o.Endpoints, Prefix: o.Prefix,
		CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile,
		Username: o.Username, Password: o.Password,
	}
}

// Close drops idle connections. Leases stay in etcd: they must survive a
// restart.
func (r *Registry) Close() error {
	r.transport.CloseIdleConnections()
	return nil
}

// Prefix returns the key prefix in use (with a leading /).
func (r *Registry) Prefix() string { return r.prefix }
