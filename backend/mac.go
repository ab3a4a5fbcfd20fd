package backend

import (
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
)

// StableMAC derives a locally administered unicast MAC from the seed
// strings: the first six bytes of a SHA-256 over the length-prefixed seeds,
// with the multicast bit cleared and the locally administered bit set.
//
// Why derived and not random (flannel picks a random MAC): peers install an
// FDB entry and a neighbour entry per VTEP MAC, so a MAC that changes on
// every restart or device recreation leaves every peer with stale entries
// until it sees the new lease. A MAC computed from the node identity is the
// same after a restart, a reboot or a device someone deleted by hand.
// Length prefixes keep ("ab","c") and ("a","bc") apart.
func StableMAC(seed ...string) net.HardwareAddr {
	h := sha256.New()
	var n [8]byte
	for _, s := range seed {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	sum := h.Sum(nil)
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01 // locally administered, unicast
	return mac
}

// DefaultDeviceMAC is the MAC EnsureDevice gives a new device when the
// caller has none (DeviceSpec.MAC nil). The seed is the host identity
// (/etc/machine-id, else the hostname), the device name (flannel.<VNI>, or
// flannel-v6.<VNI> for an IPv6 local address) and the local address.
//
// The local address alone is not enough: overlayd's central use case is
// nodes in different private networks behind 1:1 NAT, where two nodes may
// well share a private address, and equal VTEP MACs would make their FDB
// entries collide on every peer. machine-id is hashed, never exposed, as
// systemd asks of applications that derive identifiers from it. Callers
// that know better (the MAC in the node's own lease) pass DeviceSpec.MAC.
// extra (DeviceSpec.MACSeed: the advertised address) separates cloned VMs
// that share a machine-id and a private address behind different NATs.
func DefaultDeviceMAC(vni int, local netip.Addr, extra ...string) net.HardwareAddr {
	seed := append([]string{"overlayd-vtep", deviceHostIdentity(), deviceNameFor(vni, local), local.String()}, extra...)
	return StableMAC(seed...)
}

// deviceHostIdentity returns the machine id, or the hostname when the machine id
// is unreadable (minimal containers), or "" when both are unavailable.
func deviceHostIdentity() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id
		}
	}
	name, _ := os.Hostname()
	return name
}

// usableDeviceMAC reports whether mac can serve as a VTEP MAC: six bytes,
// unicast and not all zero.
func usableDeviceMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 || mac[0]&0x01 != 0 {
		return false
	}
	for _, b := range mac {
		if b != 0 {
			return true
		}
	}
	return false
}
