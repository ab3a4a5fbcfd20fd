// Package subnet owns overlayd's view of the flannel network stored in etcd:
// the network config, the lease model and its JSON, subnet allocation,
// the subnet file, and the Registry interface that each etcd API implements.
// It knows nothing about the kernel.
package subnet
