// Package etcdv3 implements subnet.Registry on the etcd v3 API, with the
// keys and values flanneld v0.28 uses (docs/compatibility.md, "etcd keys"): lease keys
// <prefix>/subnets/<a.b.c.d>-<len>, the v0.28 lease JSON, and a TTL that is
// an etcd lease attached to the key. A key without an etcd lease is a
// reservation.
//
// # Lease expiration
//
// etcd stores only a lease ID with a key; the remaining TTL costs one
// TimeToLive RPC per lease, which at 10,000 peers would be 10,000 RPCs per
// list. Peers' expirations are never needed (etcd deletes expired keys and
// the watch reports it), only our own, so the Registry remembers the
// expiration of every etcd lease it granted itself (the time before the
// Grant call plus the TTL etcd granted: never later than the real expiry)
// and reports it exactly. Any other key with an etcd lease, a peer's or a
// lease granted by an earlier process, gets UnknownExpiration: a fixed,
// non-zero time in the past. It is stable across lists, so diffs of two
// lists see no change, IsReservation is false, and a caller that schedules
// a renewal from it renews at once, which is harmless. The manager gets its
// own lease's real expiration from CreateLease and UpdateLease.
//
// # Renewal
//
// UpdateLease grants a new etcd lease with the requested TTL, moves the key
// to it in a transaction that checks the key still has the lease we read,
// then revokes the old lease if this Registry granted it. KeepAliveOnce on
// the existing lease would be one RPC shorter but keeps the TTL the lease
// was granted with (possibly by flanneld, possibly a different
// --subnet-lease TTL) instead of the one asked for, and renewing happens
// once a day, so three RPCs cost nothing. Leases granted by someone else are
// not revoked: they may carry other keys; they expire on their own.
package etcdv3
