// Package publiccloud holds the integration tests of overlayd on public
// clouds: nodes behind 1:1 NAT routers (as in separate VPCs) carrying pod
// traffic between every pair, what the logs and /status say about the
// bind and advertised addresses, the lease that flanneld still reads,
// same-site peers reaching each other over private addresses (and only
// when proven), the VXLAN peer filter, and the checksum offload setting.
//
// Every test needs root (network namespaces) and skips otherwise; the
// package's TestMain builds overlayd once.
package publiccloud
