package lab

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFlanneldBinaryFromEnv(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "flanneld")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string
		want     string
		notExist bool
		wantErr  bool
	}{
		{name: "executable", env: exe, want: exe},
		{name: "missing", env: filepath.Join(dir, "nope"), notExist: true, wantErr: true},
		{name: "not executable", env: plain, wantErr: true},
		{name: "directory", env: dir, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(FlanneldEnv, tc.env)
			got, err := FlanneldBinary()
			if (err != nil) != tc.wantErr {
				t.Fatalf("FlanneldBinary() = %q, %v; want error %v", got, err, tc.wantErr)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Fatalf("FlanneldBinary() error %v: wraps fs.ErrNotExist = %v, want %v", err, !tc.notExist, tc.notExist)
			}
			if got != tc.want {
				t.Fatalf("FlanneldBinary() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFlanneldArgs(t *testing.T) {
	l := &Lab{EtcdURL: "http://192.0.2.254:2379"}
	n := &Node{
		UnderlayIP: netip.MustParseAddr("192.0.2.1"),
		PublicIP:   netip.MustParseAddr("203.0.113.1"),
		Iface:      UnderlayIface,
		SubnetFile: "/tmp/lab/node0/subnet.env",
	}
	got := FlanneldArgs("/bin/flanneld", l, n, "--iptables-resync=1")
	want := []string{
		"/bin/flanneld",
		"--etcd-endpoints=http://192.0.2.254:2379",
		"--etcd-prefix=/coreos.com/network",
		"--iface=ul0",
		"--public-ip=203.0.113.1",
		"--subnet-file=/tmp/lab/node0/subnet.env",
		"--ip-masq",
		"--healthz-ip=192.0.2.1",
		"--healthz-port=9253",
		"--iptables-resync=1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("FlanneldArgs:\n got %q\nwant %q", got, want)
	}
}
