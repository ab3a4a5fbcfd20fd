package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// TestSubnetFileRetriedUntilWritten: a subnet file that cannot be
// written (its directory is a regular file) leaves the daemon unready
// with one error naming the path, whatever the number of attempts; once
// the directory can be made, the retry writes it and marks ready.
func TestSubnetFileRetriedUntilWritten(t *testing.T) {
	tests := []struct {
		name  string
		block func(dir string) error // makes dir unusable
		fix   func(dir string) error
	}{
		{"directory is a file", func(dir string) error {
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dir, nil, 0o644)
		}, os.Remove},
		{"parent is a file", func(dir string) error { return os.WriteFile(filepath.Dir(dir), nil, 0o644) }, func(dir string) error { return os.Remove(filepath.Dir(dir)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run", "flannel")
			if err := tt.block(dir); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			f := &subnetFile{
				path: filepath.Join(dir, "subnet.env"), ready: &readiness{},
				log: slog.New(slog.NewTextHandler(&logs, nil)),
				env: subnet.SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.7.0/24"), MTU: 1450},
			}
			for range 3 {
				if f.write() || f.ready.isReady() {
					t.Fatal("write succeeded into an unusable directory")
				}
			}
			if n := strings.Count(logs.String(), "cannot write the subnet file"); n != 1 {
				t.Errorf("%d error lines for 3 identical failures, want 1:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), f.path) {
				t.Errorf("the error does not name %s:\n%s", f.path, logs.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.run(ctx) }()
			time.Sleep(100 * time.Millisecond)
			if err := tt.fix(dir); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !f.ready.isReady() {
				t.Fatal("run returned without writing the file")
			}
			got, err := subnet.ReadSubnetFile(f.path)
			if err != nil || got.Subnet != f.env.Subnet {
				t.Fatalf("subnet file after the retry: %+v, %v", got, err)
			}
		})
	}
}

// TestSubnetEnvFamilies: the daemon's subnet file carries the pair of
// each enabled family, in flanneld v0.28's order and form.
func TestSubnetEnvFamilies(t *testing.T) {
	lease := subnet.Lease{Subnet: netip.MustParsePrefix("10.244.7.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:7::/64")}
	tests := []struct {
		name, cfg, want string
		lease           subnet.Lease
	}{
		{"IPv4 only", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`,
			"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
			subnet.Lease{Subnet: lease.Subnet}},
		{"dual-stack", `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`,
			"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_IPV6_NETWORK=2001:db8::/48\nFLANNEL_IPV6_SUBNET=2001:db8:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
			lease},
		{"IPv6 only", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`,
			"FLANNEL_IPV6_NETWORK=2001:db8::/48\nFLANNEL_IPV6_SUBNET=2001:db8:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
			subnet.Lease{IPv6Subnet: lease.IPv6Subnet}},
	}
	for _, tt := range tests {
		cfg, err := subnet.ParseConfig([]byte(tt.cfg))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "subnet.env")
		if err := subnet.WriteSubnetFile(path, subnetEnv(cfg, tt.lease, 1450, true)); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		back, err := subnet.ReadSubnetFile(path)
		if err != nil || back.IPv6Subnet.Masked() != tt.lease.IPv6Subnet {
			t.Errorf("%s: read back %+v, %v", tt.name, back, err)
		}
	}
}
