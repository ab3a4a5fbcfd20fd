package subnet

import (
	"hash/maphash"
	"net/netip"
	"testing"
)

func TestKnownLeaseFingerprint(t *testing.T) {
	base := LeaseAttrs{
		PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: BackendVXLAN,
		BackendData: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}`),
	}
	k := newKnownLeases(maphash.MakeSeed(), 0)
	tests := []struct {
		name string
		edit func(*LeaseAttrs)
		same bool
	}{
		{"identical", func(*LeaseAttrs) {}, true},
		{"JSON spacing", func(a *LeaseAttrs) { a.BackendData = []byte(`{ "VNI": 1, "VtepMAC": "02:00:00:00:00:01" }`) }, true},
		{"PublicIP", func(a *LeaseAttrs) { a.PublicIP = netip.MustParseAddr("192.0.2.2") }, false},
		{"PublicIPv6", func(a *LeaseAttrs) { a.PublicIPv6 = netip.MustParseAddr("2001:db8::1") }, false},
		{"PrivateIP", func(a *LeaseAttrs) { a.PrivateIP = netip.MustParseAddr("198.51.100.1") }, false},
		{"BackendType", func(a *LeaseAttrs) { a.BackendType = "udp" }, false},
		{"BackendData", func(a *LeaseAttrs) { a.BackendData = []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:02"}`) }, false},
		{"BackendV6Data", func(a *LeaseAttrs) { a.BackendV6Data = []byte(`{"VNI":1}`) }, false},
		{"NodeID", func(a *LeaseAttrs) { a.NodeID = "n1" }, false},
		{"SameSiteKey", func(a *LeaseAttrs) { a.SameSiteKey = []byte{1} }, false},
		{"fields do not run together", func(a *LeaseAttrs) { a.BackendType, a.NodeID = "vxla", "n"+a.NodeID }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := base
			tt.edit(&other)
			if got := k.fingerprint(&base) == k.fingerprint(&other); got != tt.same {
				t.Errorf("same fingerprint %v, want %v (AttrsEqual %v)", got, tt.same, AttrsEqual(base, other))
			}
			if tt.same != AttrsEqual(base, other) {
				t.Errorf("the case disagrees with AttrsEqual")
			}
		})
	}
}

// TestKnownLeaseRemoval: a removal carries the last addresses, backend
// and backend data of the peer, as PeerSink promises.
func TestKnownLeaseRemoval(t *testing.T) {
	k := newKnownLeases(maphash.MakeSeed(), 0)
	l := Lease{
		Subnet: netip.MustParsePrefix("10.5.3.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:5:3::/64"),
		Attrs: LeaseAttrs{
			PublicIP: netip.MustParseAddr("192.0.2.3"), PublicIPv6: netip.MustParseAddr("2001:db8::3"),
			BackendType: BackendVXLAN, BackendData: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:03"}`),
			BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:06:03"}`),
		},
	}
	ev := k.record(&l).removal(l.ID())
	if ev.Type != EventRemoved || ev.Lease.ID() != l.ID() || !AttrsEqual(ev.Lease.Attrs, l.Attrs) {
		t.Errorf("removal %+v, want the lease's key and attributes %+v", ev, l)
	}
}
