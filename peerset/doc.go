// Package peerset owns the current peer set: the one place that knows
// which remote nodes exist and what every consumer needs to know of them.
//
// Its inputs arrive in one queue: the lease manager's subnet.PeerSink calls
// (ReplacePeers, UpdatePeers; etcd or Kubernetes) and same-site verdicts
// (SetVerdict: a subnet's private address is verified, or no longer). Run
// (or Step, in tests) drains the queue on one goroutine and derives, in
// one place:
//
//   - the reconciler's decoded peers (Sink): subnet, PublicIP, VTEP MAC and
//     the underlay destination (the verified private address, else the
//     PublicIP), "keep as is" for a lease that cannot be used, removals;
//   - the VXLAN peer filter's source addresses (AddrSink): each peer's
//     PublicIP, and its private address only while it is verified;
//   - the same-site candidates (CandidateSink): subnet, OverlaydPrivateIP,
//     VTEP MAC;
//   - one "peer added", "peer changed" or "peer removed" log line per
//     change (one aggregate line for a batch of more than eight).
//
// BackendData is decoded here, once (package vxlandata), and every peer
// lease is checked here, once, before anything reaches the kernel (the
// lease policy, decode.go and overlap.go): its subnet must be exactly
// SubnetLen long, inside the network, clear of our own subnet and of every
// older peer's (the older lease wins on every node: etcd create revision
// or Node creation time, then the subnet); its PublicIP and private address
// must be usable unicast addresses, the PublicIP none of ours.
//
// A refused subnet (wrong length, overlapping) is withdrawn: it has no
// peer, and its kernel entries go. One rule covers a lease whose fields
// cannot be used (an unreadable value, a malformed or refused field): the
// subnet keeps its last good state for every consumer until the lease is
// usable again or its key goes away; the reconciler is told to keep the
// subnet's kernel entries as they are. Each refusal is logged once (key,
// field, value), counted in overlayd_peer_leases_refused{reason} and
// listed by Refused (the daemon's /status). It never touches other peers,
// except that an older overlapping lease withdraws a newer one; when the
// older goes, the newer is admitted.
//
// Outputs are plain calls made from the owner's goroutine; a consumer
// queues what it is given and never calls back into the Set synchronously
// except through SetVerdict, which only queues.
package peerset
