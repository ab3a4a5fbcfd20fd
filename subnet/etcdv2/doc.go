// Package etcdv2 implements subnet.Registry on the etcd v2 API
// (go.etcd.io/etcd/client/v2), with the keys and values flanneld v0.11
// uses (docs/compatibility.md, "etcd keys"): lease keys <prefix>/subnets/<a.b.c.d>-<len>
// whose TTL is the key's own v2 TTL, and the v0.11 lease JSON. A key
// without TTL is a reservation and stays one when it is updated.
//
// # Values
//
// Leases are written in the v0.11 form (no PublicIPv6 field). A lease that
// carries IPv6 attributes, which v0.11 cannot express, is written in the
// v0.28 form instead so that nothing is lost; v0.11 decoders ignore the
// extra fields. BackendData is written as the caller gives it.
//
// # Indexes
//
// Revisions are etcd v2 indexes. ListLeases reports the X-Etcd-Index of its
// response (also when the subnets directory does not exist yet), so
// WatchLeases(fromRevision) waits for index fromRevision+1 onwards.
// etcd v2 keeps only the last 1000 events of the whole keyspace: a watch
// from an older index fails with error 401 "index cleared" (or 400 after a
// snapshot recovery), which WatchLeases reports as subnet.ErrHistoryLost so
// that the caller re-lists. The removal of the subnets directory itself
// (or of a parent) is reported the same way: it is not a lease event.
//
// # Expirations
//
// etcd v2 returns a key's absolute expiration time on etcd's wall clock,
// which clock skew between etcd and this node would move. Lease.Expiration
// is instead our clock just before the request plus the TTL etcd says
// remains (whole seconds, rounded down), for every lease, ours and peers':
// it errs early, never late, which is what fencing an expired lease needs.
//
// # Errors
//
// Connection errors keep the v2 client's per-endpoint causes and gain a
// hint naming the TLS file or credential flag to fix (an untrusted server
// certificate, a refused client certificate, rejected credentials).
package etcdv2
