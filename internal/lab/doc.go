// Package lab builds a virtual cluster of overlayd nodes on one machine,
// entirely inside network namespaces it creates: an underlay (one flat L2
// segment, or nodes behind 1:1 NAT routers as in separate cloud VPCs), a
// TCP proxy that makes a root-loopback etcd reachable from every node, the
// agents running in the node namespaces, and pods made by the real CNI chain
// (overlayd as the flannel plugin, bridge, host-local, portmap, loopback).
//
// Integration tests, the demo program and the benchmarks use it. It never
// touches the root namespace's links, routes, sysctls or iptables, and
// Close removes every namespace and process it made, also after a
// partial build.
package lab
