// Package doctor is the integration suite of `overlayd doctor` and the
// health probes: a namespace lab cluster with a real etcd and the real
// kernel, each failure of issue 18 induced on one node (inside the lab's
// namespaces only), and doctor, run inside that node's namespace, must
// name it; a healthy node gets every check passed.
package doctor
