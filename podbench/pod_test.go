package podbench

import (
	"net/netip"
	"testing"
)

func TestPodAddr(t *testing.T) {
	tests := []struct {
		subnet         string
		server, client string
	}{
		{"10.244.5.0/24", "10.244.5.254", "10.244.5.253"},
		{"10.244.4.0/23", "10.244.5.254", "10.244.5.253"},
		{"10.244.5.1/24", "10.244.5.254", "10.244.5.253"}, // FLANNEL_SUBNET form
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.subnet)
		if got := PodAddr(p, true).String(); got != tt.server {
			t.Errorf("%s server: %s, want %s", tt.subnet, got, tt.server)
		}
		if got := PodAddr(p, false).String(); got != tt.client {
			t.Errorf("%s client: %s, want %s", tt.subnet, got, tt.client)
		}
	}
}
