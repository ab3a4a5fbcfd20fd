// Package cni is overlayd's flannel-compatible CNI plugin. It is run as
// `overlayd cni`, or as a copy or symlink of the overlayd binary named
// `flannel` in the CNI plugin directory, so that conflists written for
// flannel's plugin (kube-flannel's 10-flannel.conflist) work unchanged.
//
// Like flannel's plugin it is a meta-plugin: it reads the network
// configuration from stdin and the node's subnet file (written by overlayd
// or flanneld), renders the configuration of a delegate plugin (bridge with
// host-local IPAM by default), saves it under <dataDir>/<containerID> for
// DEL, and executes the delegate found on CNI_PATH with the same
// environment. docs/cni.md describes the behaviour it keeps.
package cni
