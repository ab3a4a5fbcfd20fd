// Package nft is the integration suite of overlayd's nftables mode
// (EnableNFTables, package nftrules): a three-node cluster in network
// namespaces with the real kernel and etcd, compared with a real flanneld
// v0.28 in the same mode; drift repair, mode switching both ways, the VXLAN
// peer filter against a stranger, and the clear error on a host without
// iptables. The tests only run as root.
package nft
