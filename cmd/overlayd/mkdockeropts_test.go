package main

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// upstreamMkDockerOpts finds flannel's own dist/mk-docker-opts.sh in the
// module cache: the flannel module that scripts/flanneld.sh builds
// (test/flanneld). Skipped when absent outside CI.
func upstreamMkDockerOpts(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/flannel-io/flannel")
	cmd.Dir = "../../test/flanneld"
	out, err := cmd.Output()
	script := filepath.Join(strings.TrimSpace(string(out)), "dist", "mk-docker-opts.sh")
	if _, serr := os.Stat(script); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("flannel's mk-docker-opts.sh not found (%v, %v): scripts/flanneld.sh downloads it", err, serr)
		}
		t.Skipf("flannel's mk-docker-opts.sh not found (%v, %v): run scripts/flanneld.sh", err, serr)
	}
	return script
}

// TestDockerOptsMatchesUpstreamScript runs flannel's mk-docker-opts.sh and
// overlayd docker-opts with the same options on the same subnet file and
// compares the files they write, byte for byte, and their exit codes.
func TestDockerOptsMatchesUpstreamScript(t *testing.T) {
	script := upstreamMkDockerOpts(t)
	// The script ends by grepping `ip route show`: a stand-in ip prints
	// nothing, so the host's routes play no part.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ip"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"masq":   "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"nomasq": "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=8951\nFLANNEL_IPMASQ=false\n",
		// The script ignores the IPv6 pair: no IPv6 option for Docker, and
		// no --bip without FLANNEL_SUBNET.
		"dual": "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\nFLANNEL_IPV6_NETWORK=2001:db8::/48\n" +
			"FLANNEL_IPV6_SUBNET=2001:db8:0:63::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"v6only": "FLANNEL_IPV6_NETWORK=2001:db8::/48\nFLANNEL_IPV6_SUBNET=2001:db8:0:63::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
	}
	cases := []struct {
		file string
		args []string
		env  []string
	}{
		{file: "masq"},
		{file: "nomasq"},
		{file: "masq", args: []string{"-k", "DOCKER_NETWORK_OPTIONS"}},
		{file: "masq", args: []string{"-i"}},
		{file: "masq", args: []string{"-c"}},
		{file: "masq", args: []string{"-m"}},
		{file: "nomasq", args: []string{"-c", "-m", "-k", "FOO"}},
		{file: "masq", args: []string{"-ic"}},
		{file: "masq", args: []string{"-cm"}},
		{file: "masq", args: []string{"-c"}, env: []string{"DOCKER_OPTS=--debug"}},
		{file: "dual"},
		{file: "dual", args: []string{"-c", "-k", "DOCKER_NETWORK_OPTIONS"}},
		{file: "v6only"},
		{file: "v6only", args: []string{"-i", "-m"}},
	}
	for _, tc := range cases {
		name := tc.file + " " + strings.Join(tc.args, " ") + " " + strings.Join(tc.env, " ")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "subnet.env")
			if err := os.WriteFile(in, []byte(files[tc.file]), 0o644); err != nil {
				t.Fatal(err)
			}
			theirs, ours := filepath.Join(dir, "theirs"), filepath.Join(dir, "ours")
			sh := exec.Command("sh", append([]string{script, "-f", in, "-d", theirs}, tc.args...)...)
			sh.Env = append([]string{"PATH=" + bin + ":/usr/bin:/bin"}, tc.env...)
			shOut, shErr := sh.CombinedOutput()
			getenv := func(k string) string {
				for _, kv := range tc.env {
					if name, v, _ := strings.Cut(kv, "="); name == k {
						return v
					}
				}
				return ""
			}
			var stderr bytes.Buffer
			code := runDockerOpts(append([]string{"-f", in, "-d", ours}, tc.args...), mkDockerOpts, getenv, func(netip.Prefix) (string, error) { return "", nil }, &stderr)
			if (shErr == nil) != (code == 0) {
				t.Fatalf("script: %v %s; overlayd: exit %d %s", shErr, shOut, code, stderr.String())
			}
			want, err := os.ReadFile(theirs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(ours)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("overlayd wrote\n%q\nmk-docker-opts.sh wrote\n%q", got, want)
			}
		})
	}
}

// TestDockerOptsRefusesARoutedSubnet: as the script, a subnet the host
// already routes via a gateway is an error (exit 1) after the file is
// written.
func TestDockerOptsRefusesARoutedSubnet(t *testing.T) {
	dir := t.TempDir()
	in := dockerOptsWriteFile(t, filepath.Join(dir, "subnet.env"), dockerOptsFlanneldSubnetEnv)
	out := filepath.Join(dir, "docker")
	var stderr bytes.Buffer
	routed := func(p netip.Prefix) (string, error) { return p.Masked().String() + " via 192.0.2.1", nil }
	if code := runDockerOpts([]string{"-f", in, "-d", out}, mkDockerOpts, dockerOptsNoEnv, routed, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "routing table already contains the subnet: 10.244.99.0/24 via 192.0.2.1") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
