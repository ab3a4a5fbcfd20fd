package fakepeers

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

var (
	testNet2 = netip.MustParsePrefix("198.51.100.0/24")
	testNet3 = netip.MustParsePrefix("203.0.113.0/24")
)

func TestGeneratorHandsOutDistinctPeers(t *testing.T) {
	tests := []struct {
		name      string
		network   string
		subnetLen int
		take      int
		skip      []string
		wantFirst string
		wantErr   bool
	}{
		{name: "first subnet is never used", network: "10.0.0.0/8", subnetLen: 24, take: 3, wantFirst: "10.0.1.0/24"},
		{name: "skipped subnet is left out", network: "10.0.0.0/8", subnetLen: 24, take: 600, skip: []string{"10.0.1.0/24"}, wantFirst: "10.0.2.0/24"},
		{name: "small network runs out", network: "10.244.0.0/22", subnetLen: 24, take: 4, wantErr: true},
		{name: "small network, all but the first", network: "10.244.0.0/22", subnetLen: 24, take: 3, wantFirst: "10.244.1.0/24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGenerator(netip.MustParsePrefix(tc.network), tc.subnetLen)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.skip {
				g.Skip(netip.MustParsePrefix(s))
			}
			peers, err := g.Take(tc.take)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Take(%d) = %d peers, want an error", tc.take, len(peers))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := peers[0].Subnet.String(); got != tc.wantFirst {
				t.Errorf("first subnet %s, want %s", got, tc.wantFirst)
			}
			checkDistinct(t, peers, tc.skip)
		})
	}
}

func checkDistinct(t *testing.T, peers []Peer, skipped []string) {
	t.Helper()
	subnets, macs := map[netip.Prefix]bool{}, map[[6]byte]bool{}
	for _, s := range skipped {
		subnets[netip.MustParsePrefix(s)] = true
	}
	for _, p := range peers {
		if subnets[p.Subnet] || macs[p.MAC] {
			t.Fatalf("peer %+v repeats a subnet or MAC (or uses a skipped subnet)", p)
		}
		subnets[p.Subnet], macs[p.MAC] = true, true
		if !testNet2.Contains(p.PublicIP) && !testNet3.Contains(p.PublicIP) {
			t.Errorf("public IP %s is outside TEST-NET-2/3", p.PublicIP)
		}
		if p.MAC[0]&1 == 1 || p.MAC[0]&2 == 0 {
			t.Errorf("MAC %s is not locally administered unicast", p.HardwareAddr())
		}
	}
}

func TestNewGeneratorRejects(t *testing.T) {
	tests := []struct {
		network   string
		subnetLen int
	}{
		{"10.0.0.1/8", 24},
		{"fd00::/8", 64},
		{"10.0.0.0/24", 24},
		{"10.0.0.0/8", 31},
	}
	for _, tc := range tests {
		if _, err := NewGenerator(netip.MustParsePrefix(tc.network), tc.subnetLen); err == nil {
			t.Errorf("NewGenerator(%s, %d): no error", tc.network, tc.subnetLen)
		}
	}
}

func TestLeaseValueIsAVXLANLease(t *testing.T) {
	g, err := NewGenerator(netip.MustParsePrefix("10.0.0.0/8"), 24)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := g.Next()
	raw, err := p.LeaseValue()
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := subnet.UnmarshalLeaseAttrs(raw)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	data, err := vxlandata.Unmarshal(attrs.BackendData)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.PublicIP != p.PublicIP || attrs.BackendType != subnet.BackendVXLAN || data.VtepMAC.String() != p.HardwareAddr().String() {
		t.Errorf("lease %s does not carry peer %+v", raw, p)
	}
	if key := p.LeaseKey(subnet.DefaultPrefix); key != "/coreos.com/network/subnets/10.0.1.0-24" {
		t.Errorf("LeaseKey = %s", key)
	}
}

func TestDualGenerator(t *testing.T) {
	g, err := NewDualGenerator(netip.MustParsePrefix("10.0.0.0/8"), 24, netip.MustParsePrefix("2001:db8:1000::/48"))
	if err != nil {
		t.Fatal(err)
	}
	peers, err := g.Take(300)
	if err != nil {
		t.Fatal(err)
	}
	p := peers[299]
	if p.Subnet6.String() != "2001:db8:1000:12c::/64" || p.PublicIP6.String() != "2001:db8:ffff::12d" || p.HardwareAddr6().String() != "0e:06:00:00:01:2c" {
		t.Fatalf("peer 300: %s %s %s", p.Subnet6, p.PublicIP6, p.HardwareAddr6())
	}
	if got := p.LeaseKey("/coreos.com/network"); got != "/coreos.com/network/subnets/10.1.44.0-24&2001:db8:1000:12c::-64" {
		t.Fatalf("key %s", got)
	}
	v, err := p.LeaseValue()
	if err != nil || !strings.Contains(string(v), `"PublicIPv6":"2001:db8:ffff::12d"`) || !strings.Contains(string(v), `"BackendV6Data":{"VNI":1,"VtepMAC":"0e:06:00:00:01:2c"}`) {
		t.Fatalf("value %s, %v", v, err)
	}
	if _, err := NewDualGenerator(netip.MustParsePrefix("10.0.0.0/8"), 24, netip.MustParsePrefix("2001:db8::/56")); err == nil {
		t.Fatal("a /56 IPv6 network was accepted")
	}
}
