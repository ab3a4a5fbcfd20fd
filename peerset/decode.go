package peerset

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// decoded is a usable peer lease, its BackendData decoded once.
type decoded struct {
	publicIP  netip.Addr
	privateIP netip.Addr
	mac       [6]byte
}

// errIgnored marks leases that are not peers to program and not an error
// either (another backend type, our own subnet): the subnet has no peer.
var errIgnored = errors.New("lease ignored")

// errUnreadable is the reason kept for a lease whose value cannot be read.
var errUnreadable = errors.New("lease value cannot be decoded; keeping its kernel entries as they are")

// rules is what deciding about a lease needs.
type rules struct {
	network   netip.Prefix
	ownSubnet netip.Prefix
}

// decode checks a lease and decodes its BackendData. It returns an error
// wrapping errIgnored for leases that are skipped silently, and another
// error, naming the field and the value, for leases that cannot be used.
func (r rules) decode(l subnet.Lease) (decoded, error) {
	switch {
	case l.Unreadable:
		return decoded{}, errUnreadable
	case l.Attrs.BackendType != subnet.BackendVXLAN:
		return decoded{}, fmt.Errorf("BackendType %q is not %q: %w", l.Attrs.BackendType, subnet.BackendVXLAN, errIgnored)
	case l.Subnet == r.ownSubnet:
		return decoded{}, fmt.Errorf("own subnet %s: %w", l.Subnet, errIgnored)
	case !l.Subnet.IsValid() || l.Subnet != l.Subnet.Masked():
		return decoded{}, fmt.Errorf("subnet %s is not a masked prefix", l.Subnet)
	case l.Subnet.Addr().Is4() != r.network.Addr().Is4() ||
		l.Subnet.Bits() <= r.network.Bits() || !r.network.Contains(l.Subnet.Addr()):
		return decoded{}, fmt.Errorf("subnet %s is not inside the network %s", l.Subnet, r.network)
	}
	data, err := vxlandata.Unmarshal(l.Attrs.BackendData)
	if err != nil {
		return decoded{}, err
	}
	if !l.Attrs.PublicIP.IsValid() {
		return decoded{}, fmt.Errorf("no underlay address for the FDB entry (PublicIP %v)", l.Attrs.PublicIP)
	}
	d := decoded{publicIP: l.Attrs.PublicIP.Unmap(), privateIP: l.Attrs.PrivateIP.Unmap()}
	copy(d.mac[:], data.VtepMAC)
	return d, nil
}
