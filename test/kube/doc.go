// Package kube holds the integration tests of --kube-subnet-mgr against a
// real kube-apiserver (built by scripts/kube-apiserver.sh from the
// separate module test/kubeapiserver; .ci/run builds it, and the tests
// skip with a message saying so when it is missing) on a throwaway etcd:
// Node objects with podCIDRs stand for the cluster's nodes, overlayd runs
// in lab namespaces with the RBAC of the DaemonSet manifest
// (deploy/kubernetes/overlayd-kube-subnet-mgr.yaml), and pods ping each
// other across the VXLAN overlay. The package has no Go API.
package kube
