// Package underlay chooses the external interface and its address, the way
// flanneld does (--iface, --iface-regex, --iface-can-reach, else the
// default-route interface), and explains its choice. The VXLAN device binds
// the address chosen here; the address advertised to peers may differ
// (--public-ip, behind 1:1 NAT).
package underlay
