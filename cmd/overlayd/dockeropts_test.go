package main

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dockerOptsFlanneldSubnetEnv is the subnet file flanneld v0.28 wrote in
// docs/compatibility.md.
const dockerOptsFlanneldSubnetEnv = `FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.99.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
`

func TestDockerOptsWritesWhatMkDockerOptsWrites(t *testing.T) {
	tests := []struct {
		name, subnetEnv, want string
	}{{
		name:      "ip-masq on the host, so off in Docker",
		subnetEnv: dockerOptsFlanneldSubnetEnv,
		want: `DOCKER_OPT_BIP="--bip=10.244.99.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=false"
DOCKER_OPT_MTU="--mtu=1450"
DOCKER_NETWORK_OPTIONS=" --bip=10.244.99.1/24 --ip-masq=false --mtu=1450"
`,
	}, {
		name:      "no ip-masq on the host, so Docker masquerades",
		subnetEnv: "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=8951\nFLANNEL_IPMASQ=false\n",
		want: `DOCKER_OPT_BIP="--bip=10.5.34.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=true"
DOCKER_OPT_MTU="--mtu=8951"
DOCKER_NETWORK_OPTIONS=" --bip=10.5.34.1/24 --ip-masq=true --mtu=8951"
`,
	}, {
		name:      "quoted values and IPv6 lines are accepted",
		subnetEnv: "FLANNEL_NETWORK=\"10.244.0.0/16\"\nFLANNEL_SUBNET=\"10.244.7.1/24\"\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		want: `DOCKER_OPT_BIP="--bip=10.244.7.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=false"
DOCKER_OPT_MTU="--mtu=1450"
DOCKER_NETWORK_OPTIONS=" --bip=10.244.7.1/24 --ip-masq=false --mtu=1450"
`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := dockerOptsWriteFile(t, filepath.Join(dir, "subnet.env"), tc.subnetEnv)
			out := filepath.Join(dir, "run", "docker")
			var stderr bytes.Buffer
			code := runDockerOptsNoRoute([]string{"--subnet-file=" + in, "--output", out}, dockerOptsNoEnv, &stderr)
			if code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			dockerOptsAssertFile(t, out, tc.want, 0o644)
		})
	}
}

func TestDockerOptsSubnetFileFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	fromEnv := dockerOptsWriteFile(t, filepath.Join(dir, "env.subnet"), dockerOptsFlanneldSubnetEnv)
	fromFlag := dockerOptsWriteFile(t, filepath.Join(dir, "flag.subnet"), strings.Replace(dockerOptsFlanneldSubnetEnv, "10.244.99.1", "10.244.42.1", 1))
	getenv := func(k string) string {
		if k == "FLANNELD_SUBNET_FILE" {
			return fromEnv
		}
		return ""
	}
	tests := []struct {
		name    string
		args    []string
		wantBIP string
	}{
		{"environment used when the flag is absent", nil, "--bip=10.244.99.1/24"},
		{"flag wins over the environment", []string{"--subnet-file", fromFlag}, "--bip=10.244.42.1/24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "docker")
			var stderr bytes.Buffer
			if code := runDockerOptsNoRoute(append(tc.args, "--output="+out), getenv, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(got), `DOCKER_OPT_BIP="`+tc.wantBIP+`"`) {
				t.Errorf("want %s in:\n%s", tc.wantBIP, got)
			}
		})
	}
}

func TestDockerOptsErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.env")
	noSubnet := dockerOptsWriteFile(t, filepath.Join(dir, "nosubnet.env"), "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	noMTU := dockerOptsWriteFile(t, filepath.Join(dir, "nomtu.env"), "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\n")
	malformed := dockerOptsWriteFile(t, filepath.Join(dir, "bad.env"), "FLANNEL_SUBNET=10.244.99.1\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  []string // all must appear on stderr
	}{
		{"missing subnet file", []string{"--subnet-file", missing}, 1, []string{missing, "running and ready"}},
		{"no FLANNEL_SUBNET", []string{"--subnet-file", noSubnet}, 1, []string{"FLANNEL_SUBNET is missing", noSubnet}},
		{"no FLANNEL_MTU", []string{"--subnet-file", noMTU}, 1, []string{"FLANNEL_MTU is missing"}},
		{"malformed value", []string{"--subnet-file", malformed}, 1, []string{"FLANNEL_SUBNET", "10.244.99.1", "not a CIDR"}},
		{"unknown flag", []string{"--bogus"}, 2, []string{"-bogus"}},
		{"stray argument", []string{"now"}, 2, []string{`unexpected argument "now"`}},
		{"help", []string{"--help"}, 0, []string{"mk-docker-opts.sh", "-subnet-file", "-output"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "docker")
			var stderr bytes.Buffer
			code := runDockerOptsNoRoute(append(tc.args, "--output="+out), dockerOptsNoEnv, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written although the command failed", out)
			}
		})
	}
}

func TestDockerOptsReplacesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	in := dockerOptsWriteFile(t, filepath.Join(dir, "subnet.env"), dockerOptsFlanneldSubnetEnv)
	out := dockerOptsWriteFile(t, filepath.Join(dir, "docker"), "DOCKER_OPT_BIP=\"--bip=10.9.9.1/24\"\nstale=1\n")
	if code := runDockerOptsNoRoute([]string{"--subnet-file", in, "--output", out}, dockerOptsNoEnv, os.Stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "stale") || strings.Contains(string(got), "10.9.9.1") {
		t.Errorf("old content survived:\n%s", got)
	}
}

func dockerOptsNoEnv(string) string { return "" }

func dockerOptsWriteFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func dockerOptsAssertFile(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s:\n got: %q\nwant: %q", path, got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), mode)
	}
}

// runDockerOptsNoRoute is `overlayd docker-opts` on a host that routes no
// pod subnet via a gateway.
func runDockerOptsNoRoute(args []string, getenv func(string) string, stderr io.Writer) int {
	return runDockerOpts(args, overlaydDockerOpts, getenv, func(netip.Prefix) (string, error) { return "", nil }, stderr)
}
