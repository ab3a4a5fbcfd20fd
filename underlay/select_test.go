package underlay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type fakeHost struct {
	ifaces   []Iface
	defIdx   int
	routeIdx int
	routeSrc netip.Addr
}

func (f fakeHost) Interfaces() ([]Iface, error) { return f.ifaces, nil }
func (f fakeHost) DefaultRouteIndex() (int, error) {
	if f.defIdx == 0 {
		return 0, ErrNoDefaultRoute
	}
	return f.defIdx, nil
}
func (f fakeHost) RouteTo(netip.Addr) (int, netip.Addr, error) {
	if f.routeIdx == 0 {
		return 0, netip.Addr{}, errors.New("network unreachable")
	}
	return f.routeIdx, f.routeSrc, nil
}

func TestSelect(t *testing.T) {
	host := fakeHost{
		ifaces: []Iface{
			{Name: "lo", Index: 1, MTU: 65536, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Name: "eth0", Index: 2, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}},
			{Name: "eth1", Index: 3, MTU: 9000, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/24"), netip.MustParsePrefix("198.51.100.8/24")}},
			{Name: "empty", Index: 4, MTU: 1500},
		},
		defIdx:   2,
		routeIdx: 3,
		routeSrc: netip.MustParseAddr("198.51.100.8"),
	}
	tests := []struct {
		name      string
		spec      Spec
		host      *fakeHost
		wantIface string
		wantAddr  string
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
			if c.Iface.Name != tt.wantIface || c.Addr.String() != tt.wantAddr {
				t.Fatalf("chose %s %s, want %s %s", c.Iface.Name, c.Addr, tt.wantIface, tt.wantAddr)
			}
			if c.Reason == "" {
				t.Fatal("choice has no reason")
			}
		})
	}
}
