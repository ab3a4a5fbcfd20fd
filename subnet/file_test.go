package subnet

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSubnetFile(t *testing.T) {
	tests := []struct {
		name string
		env  SubnetEnv
		want string
	}{
		{
			name: "flannel-observed",
			env: SubnetEnv{
				Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.99.0/24"),
				MTU: 1450, IPMasq: true,
			},
			want: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		},
		{
			name: "spec example, no masquerade",
			env: SubnetEnv{
				Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.34.0/24"),
				MTU: 1450,
			},
			want: "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
		},
		{
			name: "subnet given with host bits is written from its network address",
			env: SubnetEnv{
				Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.34.7/26"),
				MTU: 8950, IPMasq: true,
			},
			want: "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/26\nFLANNEL_MTU=8950\nFLANNEL_IPMASQ=true\n",
		},
		{
			name: "dual stack: the IPv6 pair follows the IPv4 pair",
			env: SubnetEnv{
				Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.34.0/24"),
				IPv6Network: netip.MustParsePrefix("fc00::/48"), IPv6Subnet: netip.MustParsePrefix("fc00:0:0:7::/64"),
				MTU: 1430, IPMasq: true,
			},
			want: "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\n" +
				"FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\n" +
				"FLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "run", "flannel", "subnet.env")
			if err := WriteSubnetFile(path, tt.env); err != nil {
				t.Fatalf("WriteSubnetFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("content\n%s\nwant\n%s", got, tt.want)
			}
			checkMode(t, path, 0o644)
			checkMode(t, filepath.Dir(path), fs.ModeDir|0o755)
			checkOnlyFile(t, filepath.Dir(path), "subnet.env")

			back, err := ReadSubnetFile(path)
			if err != nil {
				t.Fatalf("ReadSubnetFile: %v", err)
			}
			want := tt.env
			want.Subnet = want.Subnet.Masked()
			if back != want {
				t.Errorf("read back %+v, want %+v", back, want)
			}
		})
	}
}

func TestWriteSubnetFileReplacesAtomically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := SubnetEnv{Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.1.0/24"), MTU: 1450}
	if err := WriteSubnetFile(path, env); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != string(env.Format()) {
		t.Errorf("content %q", got)
	}
	checkMode(t, path, 0o644)
	checkOnlyFile(t, filepath.Dir(path), "subnet.env")
}

func TestWriteSubnetFileErrors(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := SubnetEnv{Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.1.0/24"), MTU: 1450}
	tests := []struct {
		name string
		path string
		env  SubnetEnv
		want string
	}{
		{"no subnet", filepath.Join(dir, "a.env"), SubnetEnv{MTU: 1450}, "no subnet to write"},
		{"subnet without network", filepath.Join(dir, "b.env"), SubnetEnv{Subnet: good.Subnet, MTU: 1450}, "must be set together"},
		{"directory is a file", filepath.Join(blocker, "subnet.env"), good, "create directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteSubnetFile(tt.path, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteSubnetFile error %v, want %q", err, tt.want)
			}
		})
	}
	checkOnlyFile(t, dir, "file")
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flannel", "docker")
	if err := WriteFileAtomic(path, []byte("A=1\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "A=1\n" {
		t.Errorf("content %q", got)
	}
	checkMode(t, path, 0o644)
	checkOnlyFile(t, filepath.Dir(path), "docker")
}

func TestReadSubnetFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    SubnetEnv
		wantErr string
	}{
		{
			name:    "flannel-observed",
			content: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
			want: SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.99.0/24"),
				MTU: 1450, IPMasq: true},
		},
		{
			name: "comments, blanks, quotes, spaces, CRLF, unknown keys",
			content: "# written by hand\n\n  FLANNEL_NETWORK = \"10.5.0.0/16\"\r\nFLANNEL_SUBNET=10.5.34.1/24\n" +
				"OTHER=whatever\nFLANNEL_IPMASQ=false\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\n",
			want: SubnetEnv{Network: netip.MustParsePrefix("10.5.0.0/16"), Subnet: netip.MustParsePrefix("10.5.34.0/24"),
				IPv6Network: netip.MustParsePrefix("fc00::/48"), IPv6Subnet: netip.MustParsePrefix("fc00:0:0:7::/64")},
		},
		{name: "only the subnet", content: "FLANNEL_SUBNET=10.5.34.1/24", want: SubnetEnv{Subnet: netip.MustParsePrefix("10.5.34.0/24")}},
		{name: "empty", content: ""},
		{name: "not key=value", content: "FLANNEL_NETWORK=10.5.0.0/16\nbogus\n", wantErr: `line 2: "bogus" is not KEY=VALUE`},
		{name: "bad subnet", content: "FLANNEL_SUBNET=10.5.34.1\n", wantErr: `line 1: FLANNEL_SUBNET "10.5.34.1": not a CIDR`},
		{name: "IPv6 subnet in the IPv4 key", content: "FLANNEL_SUBNET=fc00::1/64\n", wantErr: "FLANNEL_SUBNET \"fc00::1/64\": not an IPv4 CIDR"},
		{name: "IPv4 in the IPv6 key", content: "FLANNEL_IPV6_SUBNET=10.0.0.1/24\n", wantErr: "FLANNEL_IPV6_SUBNET \"10.0.0.1/24\": not an IPv6 CIDR"},
		{name: "network with host bits", content: "\n\nFLANNEL_NETWORK=10.5.0.1/16\n", wantErr: "line 3: FLANNEL_NETWORK \"10.5.0.1/16\": host bits set"},
		{name: "subnet too long", content: "FLANNEL_SUBNET=10.5.34.1/31\n", wantErr: `FLANNEL_SUBNET "10.5.34.1/31": prefix longer than /30`},
		{name: "bad MTU", content: "FLANNEL_MTU=big\n", wantErr: `line 1: FLANNEL_MTU "big": not a number`},
		{name: "MTU out of range", content: "FLANNEL_MTU=20\n", wantErr: `FLANNEL_MTU "20": not a number in 68..65535`},
		{name: "bad IPMASQ", content: "FLANNEL_IPMASQ=yes\n", wantErr: `line 1: FLANNEL_IPMASQ "yes": not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subnet.env")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSubnetFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadSubnetFileMissing(t *testing.T) {
	_, err := ReadSubnetFile(filepath.Join(t.TempDir(), "nope.env"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want fs.ErrNotExist", err)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s mode %v, want %v", path, st.Mode(), want)
	}
}

// checkOnlyFile asserts that no temporary file was left behind.
func checkOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want only %s", dir, names, name)
	}
}
