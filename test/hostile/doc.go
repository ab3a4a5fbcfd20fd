// Package hostile holds the integration tests of overlayd against hostile
// or broken input: a node cut from etcd past its lease (fencing), a
// second node claiming the same PublicIP, a peer filter that cannot be
// installed, strangers answering same-site probes. Each runs a real etcd,
// real agents in network namespaces (internal/lab) and the real kernel,
// and shows the legitimate mesh still working and the refusal counted.
// Every test needs root and skips otherwise.
package hostile
