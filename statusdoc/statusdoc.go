// Package statusdoc is the document overlayd serves at /status: the
// daemon fills it, `overlayd status` prints it, and the integration
// tests read it. Field names are the JSON API; add fields, never rename.
package statusdoc

import (
	"time"

	"github.com/overlayd/overlayd/backend"
)

// Doc is the /status document (and `overlayd status --json`).
type Doc struct {
	Ready    bool      `json:"ready"`
	EtcdAPI  string    `json:"etcdAPI,omitempty"`
	Underlay Underlay  `json:"underlay"`
	Lease    *Lease    `json:"lease,omitempty"`
	Device   *Device   `json:"device,omitempty"`
	Sync     *Sync     `json:"sync,omitempty"`
	IPTables *IPTables `json:"iptables,omitempty"`
	// Health is the peer health probes' state (nil when --health-port=0).
	Health *Health `json:"health,omitempty"`
	// RefusedLeases are the peer leases not used as they stand (lease
	// policy, malformed or unreadable values), sorted by subnet; the IPv6
	// plane's (Family "ipv6") after the IPv4 plane's.
	RefusedLeases []RefusedLease `json:"refusedLeases,omitempty"`
	// DeviceV6 and SyncV6 are the IPv6 data plane (flannel-v6.<VNI> and
	// its reconciler), nil unless the network config enables IPv6. In an
	// IPv6-only network Device and Sync are nil.
	DeviceV6 *Device `json:"deviceV6,omitempty"`
	SyncV6   *Sync   `json:"syncV6,omitempty"`
}

// RefusedLease is one peer lease refused by the lease policy or skipped
// as malformed.
type RefusedLease struct {
	Subnet string `json:"subnet"`
	// Reason is the overlayd_peer_leases_refused label, e.g. overlaps_own_subnet.
	Reason  string    `json:"reason"`
	Field   string    `json:"field"`
	Value   string    `json:"value,omitempty"`
	Message string    `json:"message"`
	Since   time.Time `json:"since,omitzero"`
	// Kept: the subnet keeps its last good state; otherwise it has no peer.
	Kept bool `json:"kept"`
	// Family is "ipv6" for a refusal of the IPv6 plane (Subnet is then the
	// lease's IPv6 subnet and Field names the IPv6 field), "" for IPv4.
	Family string `json:"family,omitempty"`
}

// Underlay is the external interface and the two addresses on it.
type Underlay struct {
	Iface string `json:"iface"`
	// Bind is the address the VXLAN device uses as its source (local).
	Bind string `json:"bind"`
	// Advertise is the PublicIP in the lease: where peers send VXLAN.
	Advertise string `json:"advertise"`
	// AdvertiseOnHost is false behind 1:1 NAT (normal there); in an
	// IPv6-only network it is about Advertise6.
	AdvertiseOnHost bool `json:"advertiseOnHost"`
	// Bind6 and Advertise6 are the IPv6 counterparts (the IPv6 device's
	// local address and the lease's PublicIPv6), set when IPv6 is on.
	Bind6      string `json:"bind6,omitempty"`
	Advertise6 string `json:"advertise6,omitempty"`
}

// Lease is our subnet lease.
type Lease struct {
	// Subnet is the IPv4 subnet ("" in an IPv6-only network).
	Subnet string `json:"subnet"`
	// IPv6Subnet is set when IPv6 is on.
	IPv6Subnet string    `json:"ipv6Subnet,omitempty"`
	Expiration time.Time `json:"expiration,omitzero"`
	// Expired: the local clock passed Expiration without a successful
	// renewal (fencing; /readyz answers 503 meanwhile).
	Expired bool `json:"expired,omitempty"`
}

// Device is the VXLAN device.
type Device struct {
	Name  string `json:"name"`
	MAC   string `json:"mac"`
	MTU   int    `json:"mtu"`
	Local string `json:"local"`
	VNI   int    `json:"vni"`
	// TxChecksumOffload says whether the kernel's tx checksum offload (and
	// so TSO) is kept on the device, and why.
	TxChecksumOffload *Offload `json:"txChecksumOffload,omitempty"`
}

// Offload is the tx checksum offload decision and how applying it went.
type Offload struct {
	On     bool   `json:"on"`
	Mode   string `json:"mode"`
	Why    string `json:"why"`
	Detail string `json:"detail"`
	Error  string `json:"error,omitempty"`
}

// Sync is the reconciler's state.
type Sync struct {
	Synced           bool                 `json:"synced"`
	InSync           bool                 `json:"inSync"`
	LastPass         time.Time            `json:"lastPass,omitzero"`
	LastPassKind     string               `json:"lastPassKind,omitempty"`
	LastPassDuration string               `json:"lastPassDuration,omitempty"`
	LastFullPass     time.Time            `json:"lastFullPass,omitzero"`
	LastError        string               `json:"lastError,omitempty"`
	RouteMode        string               `json:"routeMode,omitempty"`
	RouteModeReason  string               `json:"routeModeReason,omitempty"`
	Counts           backend.StatusCounts `json:"counts"`
	Peers            []Peer               `json:"peers"`
}

// Peer is one peer as the reconciler programs it.
type Peer struct {
	Subnet     string `json:"subnet"`
	PublicIP   string `json:"publicIP"`
	MAC        string `json:"mac"`
	Dst        string `json:"dst"`
	Direct     bool   `json:"direct,omitempty"`
	Programmed bool   `json:"programmed"`
	Error      string `json:"error,omitempty"`
}

// IPTables is the masquerade and forward rules' state.
type IPTables struct {
	LastCheck time.Time `json:"lastCheck,omitzero"`
	InPlace   bool      `json:"inPlace"`
	Repairs   uint64    `json:"repairs"`
	LastError string    `json:"lastError,omitempty"`
}

// Health is the peer health probes: each peer over the overlay (through
// VXLAN, to its flannel.<VNI> address) and the underlay (to its address).
type Health struct {
	Port     int          `json:"port"`
	Interval string       `json:"interval"`
	Sample   int          `json:"sample"`
	Peers    []PeerHealth `json:"peers"`
}

// PeerHealth is one peer's probe state on both paths.
type PeerHealth struct {
	Subnet   string     `json:"subnet"`
	Overlay  PathHealth `json:"overlay"`
	Underlay PathHealth `json:"underlay"`
}

// PathHealth is one path's state: "reachable", "unreachable" or
// "unknown" (not probed yet), since when, the last round trip, and how
// many probes were sent and lost.
type PathHealth struct {
	Addr  string    `json:"addr"`
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	RTT   string    `json:"rtt,omitempty"`
	Sent  uint64    `json:"sent"`
	Lost  uint64    `json:"lost"`
}
