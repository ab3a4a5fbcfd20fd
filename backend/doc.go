// Package backend owns the VXLAN device and the per-peer kernel entries
// (neighbour, FDB entry, onlink route) that carry pod traffic to other
// nodes. Its reconciler computes the desired entries from the peer lease
// set, compares them with what the kernel has, and writes only the
// difference. It knows nothing about etcd.
package backend
