package etcdv3

import (
	"crypto/tls"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TLSConfig returns the client TLS configuration New would use for o (nil
// for plain http endpoints without TLS files), so that the etcd v2 registry
// shares the --etcd-cafile/--etcd-certfile/--etcd-keyfile handling and its
// error messages. Errors name the file at fault.
func TLSConfig(o Options) (*tls.Config, error) { return loadTLS(o) }

// Client returns the registry's etcd v3 client, for tools that need raw
// key access with the same endpoints, TLS and credentials (migrate-etcd).
// It is closed by Close.
func (r *Registry) Client() *clientv3.Client { return r.client }
