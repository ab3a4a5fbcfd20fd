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
