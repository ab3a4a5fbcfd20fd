// Package hostile tries attacks by hostile or broken peers against a
// running cluster in network namespaces (internal/lab) with a real etcd
// and the real kernel: leases that would steer a node's traffic
// (overlapping its subnet, out of the network, the wrong length, bogus or
// own-address PublicIPs), a second node claiming the same PublicIP, a
// stranger answering same-site probes with forged and replayed answers, a
// peer filter that cannot be installed, and a lease that expires during
// an etcd outage (fencing). Each time the node's own pods stay reachable,
// the mesh keeps working, and the refusal shows in a metric, /status or
// /readyz. Every test needs root and skips otherwise.
package hostile
