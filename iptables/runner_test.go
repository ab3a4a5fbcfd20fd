package iptables

import (
	"os/exec"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
)

// NewRunner only asks the binaries for their version: safe in the root
// namespace.
func TestNewRunnerPicksTheFamily(t *testing.T) {
	tests := []struct {
		bin  string
		ipv6 bool
		want goipt.Protocol
	}{
		{"iptables", false, goipt.ProtocolIPv4},
		{"ip6tables", true, goipt.ProtocolIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.bin, func(t *testing.T) {
			if _, err := exec.LookPath(tt.bin); err != nil {
				t.Skipf("skipping: %s not installed", tt.bin)
			}
			r, err := NewRunner(tt.ipv6)
			if err != nil {
				t.Fatalf("NewRunner(%t): %v", tt.ipv6, err)
			}
			if r.Proto() != tt.want {
				t.Fatalf("NewRunner(%t).Proto() = %v, want %v", tt.ipv6, r.Proto(), tt.want)
			}
		})
	}
}
