package main

import (
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/underlay"
)

func TestPodMTUIsTheSmallerDevice(t *testing.T) {
	d := &daemon{device: backend.Device{MTU: 1450}, device6: backend.Device{MTU: 1430}}
	tests := []struct {
		name     string
		ipv4, v6 bool
		want     int
	}{
		{"IPv4 only", true, false, 1450},
		{"dual stack", true, true, 1430},
		{"IPv6 only", false, true, 1430},
	}
	for _, tt := range tests {
		if got := d.podMTU(&subnet.Config{EnableIPv4: tt.ipv4, EnableIPv6: tt.v6}); got != tt.want {
			t.Errorf("%s: podMTU = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestDeviceSpec6(t *testing.T) {
	d := &daemon{choice: underlay.Choice{Iface: underlay.Iface{Index: 4, MTU: 9000}, Addr6: netip.MustParseAddr("2001:db8::5")},
		public6: netip.MustParseAddr("2001:db8:1::5")}
	cfg := &subnet.Config{}
	cfg.VXLAN.VNI, cfg.VXLAN.Port = 7, 4789
	spec := d.deviceSpec6(cfg, nil)
	if spec.LocalIP != d.choice.Addr6 || spec.MTU != 8930 || spec.ExtLinkIndex != 4 || spec.VNI != 7 || spec.Port != 4789 ||
		len(spec.MACSeed) != 1 || spec.MACSeed[0] != "2001:db8:1::5" {
		t.Fatalf("spec %+v", spec)
	}
	cfg.VXLAN.MTU = 1500
	if spec := d.deviceSpec6(cfg, nil); spec.MTU != 1430 {
		t.Fatalf("Backend.MTU 1500: device MTU %d, want 1430", spec.MTU)
	}
}

// TestFamilyRegistererKeepsIPv4OnlyMetricsAsTheyWere: without IPv6 the
// data plane registers as before; with it both planes' metrics carry a
// family label and fit in one registry.
func TestFamilyRegistererKeepsIPv4OnlyMetricsAsTheyWere(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := &daemon{reg: reg}
	if got := d.familyRegisterer(&subnet.Config{EnableIPv4: true}, "ipv4"); got != prometheus.Registerer(reg) {
		t.Fatal("an IPv4-only node's metrics are wrapped")
	}
	dual := &subnet.Config{EnableIPv4: true, EnableIPv6: true}
	for _, family := range []string{"ipv4", "ipv6"} {
		if _, err := peerset.New(peerset.Options{Network: netip.MustParsePrefix("10.0.0.0/8"), Peers: nopSink{},
			Registerer: d.familyRegisterer(dual, family)}); err != nil {
			t.Fatalf("%s peer set: %v", family, err)
		}
	}
}

func TestStatus6(t *testing.T) {
	d := &daemon{
		choice:          underlay.Choice{Iface: underlay.Iface{Name: "eth0"}, Addr6: netip.MustParseAddr("2001:db8::5")},
		public6:         netip.MustParseAddr("2001:db8::5"),
		device6:         backend.Device{Name: "flannel-v6.1", MTU: 1430, LocalIP: netip.MustParseAddr("2001:db8::5"), VNI: 1},
		advertiseOnHost: true,
	}
	var doc statusdoc.Doc
	d.status6(&doc)
	if doc.Underlay.Iface != "eth0" || doc.Underlay.Bind6 != "2001:db8::5" || doc.Underlay.Bind != "" ||
		doc.DeviceV6 == nil || doc.DeviceV6.Name != "flannel-v6.1" || doc.Device != nil || !doc.Underlay.AdvertiseOnHost {
		t.Fatalf("IPv6-only status: %+v / %+v", doc.Underlay, doc.DeviceV6)
	}
	for field, want := range map[string]string{"Subnet": "IPv6Subnet", "PublicIP": "PublicIPv6", "BackendData": "BackendV6Data", "value": "value"} {
		if got := ipv6Field(field); got != want {
			t.Errorf("ipv6Field(%s) = %s, want %s", field, got, want)
		}
	}
	if prefixString(netip.Prefix{}) != "" || prefixString(netip.MustParsePrefix("2001:db8::/64")) != "2001:db8::/64" {
		t.Error("prefixString")
	}
}
