package underlay

import (
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestNetlinkHostSelectsBothFamilies runs the selection against the real
// kernel of a namespace with two veth ends: u0 carries IPv4 and IPv6
// default routes, u1 an IPv6 address and a route to 2001:db8:99::/48.
func TestNetlinkHostSelectsBothFamilies(t *testing.T) {
	ns := netnsutil.NewT(t, "ul6")
	for _, args := range [][]string{
		{"ip", "link", "add", "u0", "type", "veth", "peer", "name", "u0p"},
		{"ip", "link", "add", "u1", "type", "veth", "peer", "name", "u1p"},
		{"ip", "addr", "add", "192.0.2.1/24", "dev", "u0"},
		{"ip", "addr", "add", "2001:db8:1::1/64", "dev", "u0", "nodad"},
		{"ip", "addr", "add", "198.51.100.1/24", "dev", "u1"},
		{"ip", "addr", "add", "2001:db8:2::1/64", "dev", "u1", "nodad"},
		{"ip", "link", "set", "u0p", "up"},
		{"ip", "link", "set", "u1p", "up"},
		{"ip", "link", "set", "u0", "up"},
		{"ip", "link", "set", "u1", "up"},
		{"ip", "route", "add", "default", "via", "192.0.2.254", "dev", "u0"},
		{"ip", "-6", "route", "add", "default", "via", "2001:db8:1::fe", "dev", "u0"},
		{"ip", "-6", "route", "add", "2001:db8:99::/48", "via", "2001:db8:2::fe", "dev", "u1"},
	} {
		netnsutil.MustExec(t, ns, args...)
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	host := NetlinkHost{H: h}
	tests := []struct {
		name               string
		spec               Spec
		iface, addr, addr6 string
	}{
		{name: "IPv4 default route", spec: Spec{}, iface: "u0", addr: "192.0.2.1"},
		{name: "dual default route", spec: Spec{IPv6: true}, iface: "u0", addr: "192.0.2.1", addr6: "2001:db8:1::1"},
		{name: "IPv6-only default route", spec: Spec{IPv6: true, IPv4Off: true}, iface: "u0", addr6: "2001:db8:1::1"},
		{name: "IPv6 can reach", spec: Spec{IPv6: true, IPv4Off: true, IfaceCanReach: netip.MustParseAddr("2001:db8:99::5")}, iface: "u1", addr6: "2001:db8:2::1"},
		{name: "dual iface by IPv6 address", spec: Spec{IPv6: true, Ifaces: []string{"2001:db8:2::1"}}, iface: "u1", addr: "198.51.100.1", addr6: "2001:db8:2::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Select(host, tt.spec)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if c.Iface.Name != tt.iface || addrString(c.Addr) != tt.addr || addrString(c.Addr6) != tt.addr6 {
				t.Fatalf("chose %s %s %s (%s), want %s %s %s", c.Iface.Name, c.Addr, c.Addr6, c.Reason, tt.iface, tt.addr, tt.addr6)
			}
			if c.Addr6.IsValid() && c.Prefix6.Bits() != 64 {
				t.Fatalf("IPv6 prefix %s, want /64", c.Prefix6)
			}
		})
	}
}
