package peerset

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// decoded is a usable peer lease, its BackendData decoded once. It is
// kept for every peer, so it is small: the same-site fields, which
// flanneld's leases do not have, are behind a pointer.
type decoded struct {
	publicIP netip.Addr
	mac      [6]byte
	// site is what the lease says for same-site detection; nil when it
	// names neither a private address nor a key.
	site *siteFields
}

// siteFields are a lease's OverlaydPrivateIP and OverlaydKey.
type siteFields struct {
	privateIP netip.Addr
	key       [32]byte // OverlaydKey (all zero: none): signs the peer's same-site answers
}

// privateIP is the lease's OverlaydPrivateIP (invalid: none).
func (d *decoded) privateIP() netip.Addr {
	if d.site == nil {
		return netip.Addr{}
	}
	return d.site.privateIP
}

// key is the lease's OverlaydKey (all zero: none).
func (d *decoded) key() [32]byte {
	if d.site == nil {
		return [32]byte{}
	}
	return d.site.key
}

// errIgnored marks leases that are not peers to program and not an error
// either (another backend type, our own subnet): the subnet has no peer.
var errIgnored = errors.New("lease ignored")

// errUnreadable is the reason kept for a lease whose value cannot be read.
var errUnreadable = errors.New("lease value cannot be decoded; keeping its kernel entries as they are")

// Reasons a peer lease is refused: the label of
// overlayd_peer_leases_refused and statusdoc.RefusedLease.Reason.
const (
	ReasonUnreadable        = "unreadable"
	ReasonMalformed         = "malformed"
	ReasonOutsideNetwork    = "outside_network"
	ReasonSubnetLength      = "subnet_length"
	ReasonOverlapsOwnSubnet = "overlaps_own_subnet"
	ReasonOverlapsPeer      = "overlaps_peer"
	ReasonPublicIPUnusable  = "public_ip_unusable"
	ReasonPublicIPOurs      = "public_ip_ours"
	ReasonPrivateIPUnusable = "private_ip_unusable"
)

// refusal says why a lease cannot be used: the metric reason, the field at
// fault and its value, and the message.
type refusal struct {
	reason, field, value string
	err                  error
	// withdraw: the subnet itself is refused, so there is no last good
	// state to keep: the subnet has no peer, its kernel entries go.
	withdraw bool
	// subnetOK: the subnet passed its checks (the fault is elsewhere), so
	// it takes its place among the peers' subnets for the overlap rule.
	subnetOK bool
	// since is when the subnet was first refused for this reason.
	since time.Time
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason, field, value string, withdraw bool, format string, args ...any) *refusal {
	return &refusal{reason: reason, field: field, value: value, withdraw: withdraw, err: fmt.Errorf(format, args...)}
}

// rules is what deciding about a lease needs.
type rules struct {
	network   netip.Prefix
	ownSubnet netip.Prefix
	// subnetLen is the length every peer subnet must have; 0: unchecked.
	subnetLen int
	// local are this node's addresses: no peer may claim them.
	local map[netip.Addr]bool
}

// decode checks a lease on its own (not against other peers) and decodes
// its BackendData. It returns an error wrapping errIgnored for leases that
// are skipped silently, and a *refusal otherwise.
func (r rules) decode(l subnet.Lease) (decoded, error) {
	if l.Unreadable {
		return decoded{}, &refusal{reason: ReasonUnreadable, field: "value", err: errUnreadable,
			subnetOK: l.Subnet != r.ownSubnet && r.checkSubnet(l.Subnet) == nil}
	}
	if l.Attrs.BackendType != subnet.BackendVXLAN {
		return decoded{}, fmt.Errorf("BackendType %q is not %q: %w", l.Attrs.BackendType, subnet.BackendVXLAN, errIgnored)
	}
	if l.Subnet == r.ownSubnet {
		return decoded{}, fmt.Errorf("own subnet %s: %w", l.Subnet, errIgnored)
	}
	if err := r.checkSubnet(l.Subnet); err != nil {
		return decoded{}, err
	}
	data, err := vxlandata.Unmarshal(l.Attrs.BackendData)
	if err != nil {
		return decoded{}, &refusal{reason: ReasonMalformed, field: "BackendData", value: string(l.Attrs.BackendData), err: err, subnetOK: true}
	}
	d := decoded{publicIP: l.Attrs.PublicIP.Unmap()}
	if l.Attrs.PrivateIP.IsValid() || len(l.Attrs.SameSiteKey) > 0 {
		d.site = &siteFields{privateIP: l.Attrs.PrivateIP.Unmap()}
		copy(d.site.key[:], l.Attrs.SameSiteKey) // decoded as 32 bytes or none
	}
	copy(d.mac[:], data.VtepMAC)
	if ref := r.checkAddrs(d); ref != nil {
		ref.subnetOK = true
		return decoded{}, ref
	}
	return d, nil
}

// checkSubnet refuses a subnet that is not a peer's place in the network.
func (r rules) checkSubnet(s netip.Prefix) *refusal {
	v := s.String()
	switch {
	case !s.IsValid() || s != s.Masked():
		return refuse(ReasonMalformed, "Subnet", v, false, "subnet %s is not a masked prefix", s)
	case s.Addr().Is4() != r.network.Addr().Is4() || s.Bits() <= r.network.Bits() || !r.network.Contains(s.Addr()):
		// Kept, not withdrawn: nothing of ours lies outside the network.
		return refuse(ReasonOutsideNetwork, "Subnet", v, false, "subnet %s is not inside the network %s", s, r.network)
	case r.ownSubnet.IsValid() && s.Overlaps(r.ownSubnet):
		return refuse(ReasonOverlapsOwnSubnet, "Subnet", v, true, "subnet %s overlaps our own subnet %s", s, r.ownSubnet)
	case r.subnetLen > 0 && s.Bits() != r.subnetLen:
		return refuse(ReasonSubnetLength, "Subnet", v, true, "subnet %s is not /%d (SubnetLen)", s, r.subnetLen)
	}
	return nil
}

// checkAddrs refuses underlay addresses that would steer VXLAN anywhere
// but to a peer: they must be unicast, routable, and not ours. A private
// address equal to our bind address is allowed (another site may use the
// same private addresses; it is just never a same-site candidate).
func (r rules) checkAddrs(d decoded) *refusal {
	switch {
	case !d.publicIP.IsValid():
		return refuse(ReasonMalformed, "PublicIP", "", false, "no underlay address for the FDB entry (PublicIP %v)", d.publicIP)
	case !usableUnicast(d.publicIP):
		return refuse(ReasonPublicIPUnusable, "PublicIP", d.publicIP.String(), false, "PublicIP %s is not a usable unicast address", d.publicIP)
	case r.local[d.publicIP]:
		return refuse(ReasonPublicIPOurs, "PublicIP", d.publicIP.String(), false, "PublicIP %s is this node's own address", d.publicIP)
	case d.privateIP().IsValid() && !usableUnicast(d.privateIP()):
		return refuse(ReasonPrivateIPUnusable, "OverlaydPrivateIP", d.privateIP().String(), false, "OverlaydPrivateIP %s is not a usable unicast address", d.privateIP())
	}
	return nil
}

// thisNetwork is 0.0.0.0/8: "this host on this network", never a peer.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// usableUnicast reports whether a can be a peer's underlay address: not
// unspecified, loopback, multicast, broadcast or link-local.
func usableUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && !(a.Is4() && thisNetwork.Contains(a))
}
