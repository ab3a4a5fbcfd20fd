package subnet

import (
	"net/netip"
	"testing"
)

func TestKeys(t *testing.T) {
	p := netip.MustParsePrefix("10.5.34.0/24")
	tests := []struct{ got, want string }{
		{ConfigKey(DefaultPrefix), "/coreos.com/network/config"},
		{ConfigKey("/x/"), "/x/config"},
		{SubnetsDir(DefaultPrefix), "/coreos.com/network/subnets/"},
		{KeyName(p), "10.5.34.0-24"},
		{LeaseKey(DefaultPrefix, p), "/coreos.com/network/subnets/10.5.34.0-24"},
		{LeaseKey("/coreos.com/network/", p), "/coreos.com/network/subnets/10.5.34.0-24"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseKeyName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" means an error
	}{
		{"10.244.37.0-24", "10.244.37.0/24"},
		{"10.244.99.0-24", "10.244.99.0/24"},
		{"0.0.0.0-0", "0.0.0.0/0"},
		{"10.5.0.4-30", "10.5.0.4/30"},
		{"1.2.3.4-32", "1.2.3.4/32"},
		{"10.5.34.0-24&fc00:0:0:1::-64", "10.5.34.0/24"},
		{"10.5.34.0-24&fc00::-48", "10.5.34.0/24"},
		{"", ""},
		{"10.5.34.0", ""},
		{"10.5.34.0/24", ""},
		{"10.5.34.0-", ""},
		{"10.5.34.0-33", ""},
		{"10.5.34.0-024", ""},
		{"10.5.34.0-+24", ""},
		{"10.5.34.0--0", ""},
		{"10.5.34.0- 24", ""},
		{"10.5.34.0-1000", ""},
		{"10.5.34.1-24", ""},
		{"10.05.34.0-24", ""},
		{"fc00::-64", ""},
		{"::ffff:10.5.34.0-120", ""},
		{"10.5.34.0-24&", ""},
		{"10.5.34.0-24&garbage", ""},
		{"10.5.34.0-24&fc00::1-64", ""},
		{"10.5.34.0-24&10.5.35.0-24", ""},
		{"10.5.34.0-24&fc00::-129", ""},
		{"&fc00::-64", ""},
	}
	for _, tt := range tests {
		got, err := ParseKeyName(tt.name)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseKeyName(%q) = %v, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("ParseKeyName(%q) = %v, %v, want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestParseLeaseKey(t *testing.T) {
	got, err := ParseLeaseKey(DefaultPrefix, "/coreos.com/network/subnets/10.244.37.0-24")
	if err != nil || got != netip.MustParsePrefix("10.244.37.0/24") {
		t.Errorf("ParseLeaseKey = %v, %v", got, err)
	}
	if _, err := ParseLeaseKey(DefaultPrefix, "/other/subnets/10.244.37.0-24"); err == nil {
		t.Errorf("ParseLeaseKey accepted a key under another prefix")
	}
}

func TestParseLeaseIDName(t *testing.T) {
	v4 := netip.MustParsePrefix("10.5.34.0/24")
	v6 := netip.MustParsePrefix("fc00:0:0:1::/64")
	tests := []struct {
		name string
		want LeaseID
		ok   bool
	}{
		{"10.5.34.0-24", LeaseID{Subnet: v4}, true},
		{"10.5.34.0-24&fc00:0:0:1::-64", LeaseID{Subnet: v4, IPv6Subnet: v6}, true},
		// IPv6-only: flanneld v0.28 writes the empty IPv4 part as 0.0.0.0-0.
		{"0.0.0.0-0&fc00:0:0:1::-64", LeaseID{IPv6Subnet: v6}, true},
		{"0.0.0.0-0", LeaseID{Subnet: netip.MustParsePrefix("0.0.0.0/0")}, true},
		{"10.5.34.0-24&2001:db8:0:ff::-64", LeaseID{Subnet: v4, IPv6Subnet: netip.MustParsePrefix("2001:db8:0:ff::/64")}, true},
		// Not canonical: flanneld's parser wants lower-case hex, and
		// KeyName must give the name back.
		{"10.5.34.0-24&FC00:0:0:1::-64", LeaseID{}, false},
		{"10.5.34.0-24&fc00:0000:0:1::-64", LeaseID{}, false},
		{"10.5.34.0-24&fc00:0:0:1:0:0:0:0-64", LeaseID{}, false},
		{"10.5.34.0-24&fc00:0:0:1::-064", LeaseID{}, false},
		{"10.5.34.0-24&fc00:0:0:1::1-64", LeaseID{}, false},
		{"10.5.34.0-24&fe80::%eth0-64", LeaseID{}, false},
		{"10.5.34.0-24&::ffff:10.0.0.0-120", LeaseID{}, false},
		{"0.0.0.0-0&", LeaseID{}, false},
		{"&fc00::-64", LeaseID{}, false},
		{"fc00::-64", LeaseID{}, false},
	}
	for _, tt := range tests {
		got, err := ParseLeaseIDName(tt.name)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLeaseIDName(%q) = %+v, %v; want %+v, ok %v", tt.name, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.KeyName() != tt.name {
			t.Errorf("KeyName of ParseLeaseIDName(%q) = %q", tt.name, got.KeyName())
		}
	}
	if _, err := ParseKeyName("0.0.0.0-0&fc00:0:0:1::-64"); err == nil {
		t.Errorf("ParseKeyName accepted an IPv6-only key (it returns the IPv4 subnet)")
	}
}

func TestLeaseIDKeyAndString(t *testing.T) {
	v4 := netip.MustParsePrefix("10.244.7.0/24")
	v6 := netip.MustParsePrefix("2001:db8:0:7::/64")
	tests := []struct {
		id        LeaseID
		key, text string
	}{
		{LeaseID{Subnet: v4}, "/coreos.com/network/subnets/10.244.7.0-24", "10.244.7.0/24"},
		{LeaseID{Subnet: v4, IPv6Subnet: v6}, "/coreos.com/network/subnets/10.244.7.0-24&2001:db8:0:7::-64", "10.244.7.0/24+2001:db8:0:7::/64"},
		{LeaseID{IPv6Subnet: v6}, "/coreos.com/network/subnets/0.0.0.0-0&2001:db8:0:7::-64", "2001:db8:0:7::/64"},
	}
	for _, tt := range tests {
		if got := LeaseIDKey(DefaultPrefix, tt.id); got != tt.key {
			t.Errorf("LeaseIDKey(%+v) = %q, want %q", tt.id, got, tt.key)
		}
		if got := tt.id.String(); got != tt.text {
			t.Errorf("String(%+v) = %q, want %q", tt.id, got, tt.text)
		}
		back, err := ParseLeaseIDKey(DefaultPrefix, tt.key)
		if err != nil || back != tt.id {
			t.Errorf("ParseLeaseIDKey(%q) = %+v, %v", tt.key, back, err)
		}
	}
}
