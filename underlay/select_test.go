package underlay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type fakeHost struct {
	ifaces   []Iface
	defIdx   int // IPv4 default route's ifindex; 0: none
	defIdx6  int // IPv6 default route's ifindex; 0: none
	routeIdx int
	routeSrc netip.Addr
}

func (f fakeHost) Interfaces() ([]Iface, error) { return f.ifaces, nil }
func (f fakeHost) DefaultRouteIndex(ipv6 bool) (int, error) {
	idx := f.defIdx
	if ipv6 {
		idx = f.defIdx6
	}
	if idx == 0 {
		return 0, ErrNoDefaultRoute
	}
	return idx, nil
}
func (f fakeHost) RouteTo(netip.Addr) (int, netip.Addr, error) {
	if f.routeIdx == 0 {
		return 0, netip.Addr{}, errors.New("network unreachable")
	}
	return f.routeIdx, f.routeSrc, nil
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestSelect(t *testing.T) {
	host := fakeHost{
		ifaces: []Iface{
			{Name: "lo", Index: 1, MTU: 65536, Addrs: prefixes("127.0.0.1/8", "::1/128")},
			{Name: "eth0", Index: 2, MTU: 1500, Addrs: prefixes("fe80::1/64", "192.0.2.10/24", "2001:db8:1::10/64")},
			{Name: "eth1", Index: 3, MTU: 9000, Addrs: prefixes("198.51.100.7/24", "198.51.100.8/24", "2001:db8:2::7/64", "2001:db8:2::8/64")},
			{Name: "empty", Index: 4, MTU: 1500},
			{Name: "only6", Index: 5, MTU: 1500, Addrs: prefixes("fe80::5/64", "2001:db8:5::5/64")},
		},
		defIdx:   2,
		defIdx6:  5,
		routeIdx: 3,
		routeSrc: netip.MustParseAddr("198.51.100.8"),
	}
	dual := func(s Spec) Spec { s.IPv6 = true; return s }
	only6 := func(s Spec) Spec { s.IPv6, s.IPv4Off = true, true; return s }
	tests := []struct {
		name      string
		spec      Spec
		host      *fakeHost
		wantIface string
		wantAddr  string // IPv4 bind address; "" means none
		wantAddr6 string // IPv6 bind address; "" means none
		wantErr   string
	}{
		{name: "default route", wantIface: "eth0", wantAddr: "192.0.2.10"},
		{name: "iface by name", spec: Spec{Ifaces: []string{"eth1"}}, wantIface: "eth1", wantAddr: "198.51.100.7"},
		{name: "iface by address", spec: Spec{Ifaces: []string{"198.51.100.8"}}, wantIface: "eth1", wantAddr: "198.51.100.8"},
		{name: "first usable iface wins", spec: Spec{Ifaces: []string{"nope", "empty", "eth0"}}, wantIface: "eth0", wantAddr: "192.0.2.10"},
		{name: "iface missing", spec: Spec{Ifaces: []string{"nope"}}, wantErr: "--iface nope: nope: no such interface"},
		{name: "iface without address", spec: Spec{Ifaces: []string{"empty"}}, wantErr: "interface empty has no global unicast IPv4 address"},
		{name: "regex on address", spec: Spec{IfaceRegex: []string{`^198\.51\.100\.8$`}}, wantIface: "eth1", wantAddr: "198.51.100.8"},
		{name: "regex on name", spec: Spec{IfaceRegex: []string{`^eth0$`}}, wantIface: "eth0", wantAddr: "192.0.2.10"},
		{name: "regex invalid", spec: Spec{IfaceRegex: []string{`(`}}, wantErr: `--iface-regex "("`},
		{name: "regex no match", spec: Spec{IfaceRegex: []string{`^wlan`}}, wantErr: "--iface-regex ^wlan: no interface"},
		{name: "can reach", spec: Spec{IfaceCanReach: netip.MustParseAddr("203.0.113.1")}, wantIface: "eth1", wantAddr: "198.51.100.8"},
		{name: "no default route", host: &fakeHost{ifaces: host.ifaces}, wantErr: "no --iface given and no default route"},
		{name: "IPv4 only ignores IPv6 address", spec: Spec{Ifaces: []string{"2001:db8:2::8"}},
			wantErr: "2001:db8:2::8: the network config does not enable this address family"},

		// Dual stack: one interface, both families.
		{name: "dual default route", spec: dual(Spec{}), wantIface: "eth0", wantAddr: "192.0.2.10", wantAddr6: "2001:db8:1::10"},
		{name: "dual iface by name", spec: dual(Spec{Ifaces: []string{"eth1"}}), wantIface: "eth1", wantAddr: "198.51.100.7", wantAddr6: "2001:db8:2::7"},
		{name: "dual iface by IPv6 address", spec: dual(Spec{Ifaces: []string{"2001:db8:2::8"}}), wantIface: "eth1", wantAddr: "198.51.100.7", wantAddr6: "2001:db8:2::8"},
		{name: "dual iface by IPv4 address", spec: dual(Spec{Ifaces: []string{"198.51.100.8"}}), wantIface: "eth1", wantAddr: "198.51.100.8", wantAddr6: "2001:db8:2::7"},
		{name: "dual iface needs both families", spec: dual(Spec{Ifaces: []string{"only6"}}), wantErr: "interface only6 has no global unicast IPv4 address"},
		{name: "dual regex on IPv6 address", spec: dual(Spec{IfaceRegex: []string{`^2001:db8:2::8$`}}), wantIface: "eth1", wantAddr: "198.51.100.7", wantAddr6: "2001:db8:2::8"},
		{name: "dual regex matches both", spec: dual(Spec{IfaceRegex: []string{`\.8$|::8$`}}), wantIface: "eth1", wantAddr: "198.51.100.8", wantAddr6: "2001:db8:2::8"},
		{name: "dual can reach", spec: dual(Spec{IfaceCanReach: netip.MustParseAddr("203.0.113.1")}), wantIface: "eth1", wantAddr: "198.51.100.8", wantAddr6: "2001:db8:2::7"},
		{name: "dual can reach over IPv6", spec: dual(Spec{IfaceCanReach: netip.MustParseAddr("2001:db8:9::1")}),
			host:      &fakeHost{ifaces: host.ifaces, routeIdx: 3, routeSrc: netip.MustParseAddr("2001:db8:2::8")},
			wantIface: "eth1", wantAddr: "198.51.100.7", wantAddr6: "2001:db8:2::8"},

		// IPv6 only: IPv4 addresses are not looked at.
		{name: "v6 default route", spec: only6(Spec{}), wantIface: "only6", wantAddr6: "2001:db8:5::5"},
		{name: "v6 no default route", spec: only6(Spec{}), host: &fakeHost{ifaces: host.ifaces, defIdx: 2},
			wantErr: "no --iface given and no default route"},
		{name: "v6 iface by name", spec: only6(Spec{Ifaces: []string{"eth0"}}), wantIface: "eth0", wantAddr6: "2001:db8:1::10"},
		{name: "v6 iface by address", spec: only6(Spec{Ifaces: []string{"2001:db8:1::10"}}), wantIface: "eth0", wantAddr6: "2001:db8:1::10"},
		{name: "v6 iface with only link-local", spec: only6(Spec{Ifaces: []string{"lo"}}), wantErr: "interface lo has no global unicast IPv6 address"},
		{name: "v6 iface by IPv4 address", spec: only6(Spec{Ifaces: []string{"192.0.2.10"}}), wantErr: "does not enable this address family"},
		{name: "v6 regex", spec: only6(Spec{IfaceRegex: []string{`^2001:db8:5:`}}), wantIface: "only6", wantAddr6: "2001:db8:5::5"},
		{name: "v6 regex no match", spec: only6(Spec{IfaceRegex: []string{`^198\.`}}), wantErr: "with a global IPv6 address matches"},
		{name: "v6 can reach IPv4", spec: only6(Spec{IfaceCanReach: netip.MustParseAddr("203.0.113.1")}), wantErr: "does not enable this address family"},
		{name: "no family", spec: Spec{IPv4Off: true}, wantErr: "neither IPv4 nor IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host
			if tt.host != nil {
				h = *tt.host
			}
			c, err := Select(h, tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if c.Iface.Name != tt.wantIface || addrString(c.Addr) != tt.wantAddr || addrString(c.Addr6) != tt.wantAddr6 {
				t.Fatalf("chose %s %s %s, want %s %s %s", c.Iface.Name, c.Addr, c.Addr6, tt.wantIface, tt.wantAddr, tt.wantAddr6)
			}
			if c.Addr.IsValid() != c.Prefix.IsValid() || c.Addr6.IsValid() != c.Prefix6.IsValid() ||
				(c.Addr.IsValid() && c.Prefix.Addr() != c.Addr) || (c.Addr6.IsValid() && c.Prefix6.Addr() != c.Addr6) {
				t.Fatalf("prefixes %s %s do not match addresses %s %s", c.Prefix, c.Prefix6, c.Addr, c.Addr6)
			}
			if c.Reason == "" {
				t.Fatal("choice has no reason")
			}
		})
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
