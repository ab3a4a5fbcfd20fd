// Package e2e runs whole overlayd nodes in network namespaces against a
// real etcd and the real kernel: pods ping across the overlay, and the
// state overlayd leaves behind is compared field by field with what
// flanneld v0.28 leaves (docs/compatibility.md).
package e2e
