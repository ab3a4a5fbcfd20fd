package subnet

import (
	"encoding/json"
	"net/netip"
	"time"
)

// BackendVXLAN is the only backend type overlayd programs; leases of any
// other type are ignored as peers.
const BackendVXLAN = "vxlan"

// LeaseAttrs is the value stored under a lease key. Its JSON form is
// flannel's (see MarshalLeaseAttrs / UnmarshalLeaseAttrs in leasejson.go).
type LeaseAttrs struct {
	// PublicIP is the advertised underlay address: the FDB destination
	// other nodes use to reach this node.
	PublicIP netip.Addr
	// PublicIPv6 is the advertised IPv6 underlay address, invalid when unset
	// (encoded as JSON null).
	PublicIPv6  netip.Addr
	BackendType string
	// BackendData and BackendV6Data are kept raw; the backend decodes them.
	BackendData   json.RawMessage
	BackendV6Data json.RawMessage
	// PrivateIP is overlayd's extension: the address the VXLAN device binds
	// (the interface address). Encoded as "OverlaydPrivateIP", omitted when
	// invalid; flanneld ignores the unknown field.
	PrivateIP netip.Addr
	// NodeID is overlayd's extension: a stable identity of the node that
	// wrote the lease (derived from its machine id), so that two nodes
	// sharing a PublicIP never take each other's lease. Encoded as
	// "OverlaydNodeID", omitted when empty (flanneld's leases, older
	// overlayd's); flanneld ignores the unknown field.
	NodeID string
	// SameSiteKey is overlayd's extension: the node's ed25519 public key
	// (32 bytes) that signs its same-site answers, so that only the node
	// holding the lease can prove it is at PrivateIP. Encoded as
	// "OverlaydKey" in base64, omitted when empty; a lease without it gets
	// no same-site path. flanneld ignores the unknown field.
	SameSiteKey []byte
}

// Lease is one subnet lease: a key under <prefix>/subnets and its value.
type Lease struct {
	// Subnet is the IPv4 subnet, invalid in an IPv6-only lease.
	Subnet netip.Prefix
	// IPv6Subnet is the IPv6 subnet of a dual-stack or IPv6-only lease
	// (the key's "&<v6>-<len>" part), invalid when the lease has none.
	IPv6Subnet netip.Prefix
	Attrs      LeaseAttrs
	// Expiration is when the lease's TTL runs out; zero for a reservation
	// (a lease without TTL).
	Expiration time.Time
	// Created orders leases by age, as far as the store tells: etcd v3's
	// create revision of the key, etcd v2's CreatedIndex, the Node's
	// creationTimestamp (Unix nanoseconds) in kube mode. Smaller is older;
	// 0 is unknown. When two peer leases overlap, the older one wins.
	Created int64
	// Unreadable: the key names this subnet but its value cannot be
	// decoded; Attrs are empty. A sink keeps whatever it has for the subnet
	// (kernel entries included) until the value is readable again or the
	// key goes: a bad value never removes a peer, not even across restarts.
	Unreadable bool
}

// IsReservation reports whether the lease has no TTL.
func (l Lease) IsReservation() bool { return l.Expiration.IsZero() }

// EventType says whether a lease appeared (or changed) or went away.
type EventType int

const (
	// EventAdded is a put: a new lease or a changed value.
	EventAdded EventType = iota
	// EventRemoved is a delete or an expiry. The event carries the last
	// attributes seen for the subnet.
	EventRemoved
)

func (t EventType) String() string {
	if t == EventRemoved {
		return "removed"
	}
	return "added"
}

// Event is one change to the lease set.
type Event struct {
	Type  EventType
	Lease Lease
}
