// Package migrate copies a flannel network from the etcd v2 keyspace to
// the etcd v3 keyspace (overlayd migrate-etcd): the config as raw JSON,
// and every lease re-encoded in the v0.28 JSON form that flanneld and
// overlayd write on v3 (BackendData gains the config's VNI, PublicIPv6 is
// null) with the lease's remaining v2 TTL as an etcd lease. A reservation
// (a v2 key without TTL) gets no etcd lease and stays a reservation.
//
// The v2 and v3 keyspaces of one etcd are separate, so after migrating,
// nodes restarted on the v3 API find their lease by PublicIP and keep
// their subnet.
//
// Migration is idempotent: a v3 key that already holds the same lease
// (same PublicIP, backend type and VtepMAC) or the same config is left
// alone. A v3 key holding something else is a conflict: it is reported and
// left alone unless Options.Force is set. Every write is a compare-and-swap
// on the revision read just before, so a node writing the same key at the
// same time is never overwritten blindly. Options.DryRun reports what
// would happen and writes nothing.
package migrate
