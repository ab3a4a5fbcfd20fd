package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not Key=Value inside a section", path, n, line)
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u
}

// words returns every space-separated word of every value of key.
func (u unitFile) words(section, key string) []string {
	var w []string
	for _, v := range u[section][key] {
		w = append(w, strings.Fields(v)...)
	}
	return w
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitPath)
	contains := []struct {
		section, key string
		want         []string
	}{
		{"Unit", "After", []string{"network-online.target", "etcd.service"}},
		{"Unit", "Wants", []string{"network-online.target"}},
		{"Unit", "Before", []string{"docker.service", "containerd.service"}},
		{"Install", "WantedBy", []string{"multi-user.target"}},
	}
	for _, c := range contains {
		got := u.words(c.section, c.key)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("[%s] %s=%v lacks %s", c.section, c.key, got, w)
			}
		}
	}
	exact := []struct{ section, key, want string }{
		{"Service", "Type", "notify"},
		{"Service", "Restart", "always"},
		{"Service", "EnvironmentFile", "-/etc/default/overlayd"},
		{"Service", "ExecStart", "/usr/local/bin/overlayd"},
		{"Service", "LimitNOFILE", "65536"},
	}
	for _, e := range exact {
		if got := u[e.section][e.key]; !slices.Equal(got, []string{e.want}) {
			t.Errorf("[%s] %s=%q, want exactly %q", e.section, e.key, got, e.want)
		}
	}
	// Stopping overlayd must leave the data plane alone: nothing may run on
	// stop, and the processes are killed the ordinary way.
	for _, key := range []string{"ExecStop", "ExecStopPost", "ExecReload"} {
		if v, ok := u["Service"][key]; ok {
			t.Errorf("[Service] %s=%q: nothing may run on stop (state must survive restarts)", key, v)
		}
	}
	if v, ok := u["Service"]["KillMode"]; ok && !slices.Equal(v, []string{"control-group"}) {
		t.Errorf("[Service] KillMode=%q: keep systemd's default", v)
	}
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; the unit files were only checked by TestSystemdUnit")
	}
	dir := t.TempDir()
	// verify insists that ExecStart's binary exists and is executable:
	// point the units at a stub in dir.
	stub := filepath.Join(dir, "stub-binary")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	units := []struct{ src, name string }{
		{unitPath, "overlayd.service"},
		{dockerDropIn, "docker.service"}, // the drop-in also stands as a unit
	}
	for _, unit := range units {
		t.Run(unit.name, func(t *testing.T) {
			text := readFile(t, unit.src)
			for _, bin := range []string{"/usr/local/bin/overlayd", "/usr/bin/dockerd"} {
				text = strings.ReplaceAll(text, bin, stub)
			}
			path := filepath.Join(dir, unit.name)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", unit.src, err, out)
			}
			// Unknown keys and bad values are only warnings: fail on any
			// line about our unit.
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, unit.name) {
					t.Errorf("systemd-analyze verify %s: %s", unit.src, line)
				}
			}
		})
	}
}

func TestDockerDropInRunsDockerOpts(t *testing.T) {
	u := parseUnit(t, dockerDropIn)
	pre := strings.Join(u["Service"]["ExecStartPre"], "\n")
	if !strings.Contains(pre, "/usr/local/bin/overlayd docker-opts") {
		t.Errorf("ExecStartPre=%q does not run overlayd docker-opts", pre)
	}
	if !slices.Contains(u["Service"]["EnvironmentFile"], "-/run/flannel/docker") {
		t.Errorf("EnvironmentFile=%q lacks -/run/flannel/docker (optional: absent before ExecStartPre)", u["Service"]["EnvironmentFile"])
	}
	start := u["Service"]["ExecStart"]
	if len(start) != 2 || start[0] != "" || !strings.Contains(start[1], "$DOCKER_NETWORK_OPTIONS") {
		t.Errorf("ExecStart=%q: want a reset then dockerd with $DOCKER_NETWORK_OPTIONS", start)
	}
}

var envAssignment = regexp.MustCompile(`^#?\s*(FLANNELD_[A-Z0-9_]+)=(.*)$`)
var envMention = regexp.MustCompile(`FLANNELD_[A-Z0-9_]+`)

func TestEnvExampleDocumentsEveryFlag(t *testing.T) {
	text := readFile(t, envExamplePath)
	assigned := map[string]bool{}
	for n, line := range strings.Split(text, "\n") {
		m := envAssignment.FindStringSubmatch(line)
		if m == nil {
			if !strings.HasPrefix(line, "#") && strings.TrimSpace(line) != "" {
				t.Errorf("%s:%d: %q is neither a comment nor FLANNELD_*=value", envExamplePath, n+1, line)
			}
			continue
		}
		if _, ok := flagFromEnv(m[1]); !ok {
			t.Errorf("%s:%d: %s matches no overlayd flag", envExamplePath, n+1, m[1])
		}
		if strings.HasPrefix(m[2], "\"") || strings.HasPrefix(m[2], "export ") {
			t.Errorf("%s:%d: keep values plain (no quotes, no export): %q", envExamplePath, n+1, line)
		}
		assigned[m[1]] = true
	}
	mentioned := map[string]bool{}
	for _, env := range envMention.FindAllString(text, -1) {
		mentioned[env] = true
	}
	for _, f := range daemonFlags {
		env := envName(f.name)
		switch f.name {
		case "version", "kube-subnet-mgr":
			// Must not be set: only explained.
			if assigned[env] {
				t.Errorf("%s: %s must not be offered as a setting", envExamplePath, env)
			}
			if !mentioned[env] {
				t.Errorf("%s: %s is not explained", envExamplePath, env)
			}
		default:
			if !assigned[env] {
				t.Errorf("%s: no %s=... line (commented or not) for --%s", envExamplePath, env, f.name)
			}
		}
	}
}
