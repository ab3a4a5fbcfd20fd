package backend

import (
	"net/netip"
	"testing"
)

func TestStableMAC(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		same bool
	}{
		{"same seed, same MAC", []string{"node-a", "flannel.1"}, []string{"node-a", "flannel.1"}, true},
		{"other node", []string{"node-a", "flannel.1"}, []string{"node-b", "flannel.1"}, false},
		{"other VNI", []string{"node-a", "flannel.1"}, []string{"node-a", "flannel.2"}, false},
		{"seed boundaries matter", []string{"ab", "c"}, []string{"a", "bc"}, false},
		{"empty seed", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := StableMAC(tt.a...), StableMAC(tt.b...)
			for _, m := range []string{a.String(), b.String()} {
				checkDeviceMAC(t, m)
			}
			if (a.String() == b.String()) != tt.same {
				t.Errorf("StableMAC(%q) = %s, StableMAC(%q) = %s; same = %t, want %t",
					tt.a, a, tt.b, b, a.String() == b.String(), tt.same)
			}
		})
	}
}

// checkDeviceMAC fails unless s is a 6-byte locally administered unicast MAC.
func checkDeviceMAC(t *testing.T, s string) {
	t.Helper()
	m := deviceMustMAC(s)
	if len(m) != 6 || m[0]&0x01 != 0 || m[0]&0x02 == 0 {
		t.Errorf("MAC %s is not a locally administered unicast 6-byte MAC", m)
	}
	if !usableDeviceMAC(m) {
		t.Errorf("usableDeviceMAC(%s) = false", m)
	}
}

func TestDefaultDeviceMACIsStableAndDistinct(t *testing.T) {
	local := netip.MustParseAddr("192.0.2.1")
	a, b := DefaultDeviceMAC(1, local), DefaultDeviceMAC(1, local)
	checkDeviceMAC(t, a.String())
	if a.String() != b.String() {
		t.Errorf("DefaultDeviceMAC not deterministic: %s then %s", a, b)
	}
	if c := DefaultDeviceMAC(2, local); c.String() == a.String() {
		t.Errorf("VNI 1 and 2 share MAC %s", a)
	}
	if c := DefaultDeviceMAC(1, netip.MustParseAddr("192.0.2.2")); c.String() == a.String() {
		t.Errorf("local 192.0.2.1 and 192.0.2.2 share MAC %s", a)
	}
}

func TestUsableDeviceMAC(t *testing.T) {
	tests := map[string]bool{
		"0a:00:00:00:00:01":       true,
		"d6:87:b6:fa:f7:31":       true,
		"00:00:00:00:00:00":       false,
		"01:00:5e:00:00:01":       false, // multicast
		"ff:ff:ff:ff:ff:ff":       false,
		"00:00:00:00:fe:80:00:00": false, // EUI-64 length
	}
	for s, want := range tests {
		if got := usableDeviceMAC(deviceMustMAC(s)); got != want {
			t.Errorf("usableDeviceMAC(%s) = %t, want %t", s, got, want)
		}
	}
	if usableDeviceMAC(nil) {
		t.Error("usableDeviceMAC(nil) = true")
	}
}
