// Package kube is the Kubernetes subnet manager (--kube-subnet-mgr), as
// kube-flannel runs: no etcd of its own. The node's subnet is its
// spec.podCIDR(s), assigned by kube-controller-manager
// (--allocate-node-cidrs, --cluster-cidr; kubeadm's --pod-network-cidr),
// and the lease lives in Node annotations under a prefix (default
// flannel.alpha.coreos.com): kube-subnet-manager, backend-type,
// backend-data, public-ip, honouring the user's public-ip-overwrite, and the
// IPv6 forms. flanneld and overlayd nodes read and write the same
// annotations, so they share a cluster and a node can switch in place.
//
// Manager has the same shape as subnet.Manager (Acquire, Lease,
// RunRenewal, RunWatch): it publishes our annotations and the
// NetworkUnavailable=False condition through the nodes/status
// subresource, keeps them in place, and turns every node marked
// kube-subnet-manager=true into a peer lease for a subnet.PeerSink through
// a client-go informer. WaitForNode waits, saying what to fix, until our
// node has a usable podCIDR; ResolveNodeName and NewClient find the node
// name and the API server as a DaemonSet pod sees them.
//
// Client is the little of the API the manager uses (get our node and pod,
// list and watch nodes, patch nodes/status). NewClient implements it over
// a client-go REST client whose private scheme holds only core/v1, not
// the typed clientset and its scheme of every API group: that keeps the
// binary and the daemon's memory small, in etcd mode too. The informer's
// store keeps of each node only its name, annotations and podCIDRs.
//
// The RBAC this needs is kube-flannel's: pods get (only to find the node
// name from the pod), nodes get, list, watch, and nodes/status patch.
package kube
