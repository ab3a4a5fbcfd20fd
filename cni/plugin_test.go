package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDelegate is a shell script standing in for the bridge plugin: it
// records its CNI_COMMAND, stdin and environment in its directory and
// prints a result, or a CNI error when FAKE_FAIL is set.
const fakeDelegate = `#!/bin/sh
dir=$(dirname "$0")
cat > "$dir/$CNI_COMMAND.stdin"
env > "$dir/$CNI_COMMAND.env"
echo "$CNI_COMMAND" >> "$dir/calls"
if [ -n "$FAKE_FAIL" ]; then
  echo '{"cniVersion":"0.3.1","code":11,"msg":"fake failure"}'
  exit 1
fi
echo '{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.1.2/24"}]}'
`

const fakeResult = `{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.1.2/24"}]}` + "\n"

type fixture struct {
	dir, pluginDir, dataDir, subnetFile string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{
		dir:        dir,
		pluginDir:  filepath.Join(dir, "bin"),
		dataDir:    filepath.Join(dir, "data", "flannel"),
		subnetFile: filepath.Join(dir, "subnet.env"),
	}
	if err := os.MkdirAll(f.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.pluginDir, "bridge"), []byte(fakeDelegate), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.subnetFile, []byte(subnetEnvV4), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// conf is kube-flannel's flannel entry pointed at the fixture's files.
func (f fixture) conf() string {
	return `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true},` +
		`"subnetFile":"` + f.subnetFile + `","dataDir":"` + f.dataDir + `"}`
}

func (f fixture) env(cmd string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"CNI_COMMAND=" + cmd,
		"CNI_CONTAINERID=ctr-1",
		"CNI_NETNS=/run/netns/test",
		"CNI_IFNAME=eth0",
		"CNI_PATH=" + filepath.Join(f.dir, "nothing-here") + ":" + f.pluginDir,
	}
	return append(env, extra...)
}

func (f fixture) run(t *testing.T, env []string, conf string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	p := Plugin{Env: env, Stdin: strings.NewReader(conf), Stdout: &stdout, Stderr: &stderr}
	code := p.Run(context.Background())
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return code, stdout.String()
}

func (f fixture) read(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.pluginDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

const kubeFlannelDelegate = `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`

func TestAddThenDel(t *testing.T) {
	f := newFixture(t)
	code, out := f.run(t, f.env("ADD", "K8S_POD_NAME=web"), f.conf())
	if code != 0 || out != fakeResult {
		t.Fatalf("ADD: exit %d, stdout %q; want 0 and the delegate's result", code, out)
	}
	if got := f.read(t, "ADD.stdin"); got != kubeFlannelDelegate {
		t.Errorf("delegate got\n%s\nwant\n%s", got, kubeFlannelDelegate)
	}
	denv := f.read(t, "ADD.env")
	for _, kv := range []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=ctr-1", "CNI_NETNS=/run/netns/test", "K8S_POD_NAME=web"} {
		if !strings.Contains(denv, kv+"\n") {
			t.Errorf("delegate environment lacks %s:\n%s", kv, denv)
		}
	}
	saved := filepath.Join(f.dataDir, "ctr-1")
	st, err := os.Stat(saved)
	if err != nil {
		t.Fatalf("ADD saved nothing: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("saved configuration mode %v, want 0600", st.Mode().Perm())
	}
	if data, _ := os.ReadFile(saved); string(data) != kubeFlannelDelegate {
		t.Errorf("saved %s, want %s", data, kubeFlannelDelegate)
	}

	// DEL uses the saved configuration even when the subnet file is gone.
	os.Remove(f.subnetFile)
	code, out = f.run(t, f.env("DEL"), f.conf())
	if code != 0 || out != "" {
		t.Fatalf("DEL: exit %d, stdout %q", code, out)
	}
	if got := f.read(t, "DEL.stdin"); got != kubeFlannelDelegate {
		t.Errorf("DEL delegate got %s", got)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("DEL left %s (%v)", saved, err)
	}
	// A second DEL has nothing to release and does not call the delegate.
	if code, out = f.run(t, f.env("DEL"), f.conf()); code != 0 {
		t.Fatalf("second DEL: exit %d, stdout %s", code, out)
	}
	if calls := f.read(t, "calls"); calls != "ADD\nDEL\n" {
		t.Errorf("delegate calls %q, want ADD then DEL", calls)
	}
}

func TestDelKeepsStateWhenDelegateFails(t *testing.T) {
	f := newFixture(t)
	if code, out := f.run(t, f.env("ADD"), f.conf()); code != 0 {
		t.Fatalf("ADD: %s", out)
	}
	code, out := f.run(t, f.env("DEL", "FAKE_FAIL=1"), f.conf())
	if code != 1 {
		t.Fatalf("DEL with failing delegate: exit %d", code)
	}
	var e Error
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Code != 11 || !strings.Contains(e.Msg, "fake failure") {
		t.Errorf("error %q (%v), want code 11 naming the delegate's message", out, err)
	}
	if _, err := os.Stat(filepath.Join(f.dataDir, "ctr-1")); err != nil {
		t.Errorf("failed DEL removed the saved configuration: %v", err)
	}
}

func TestDelWithUndecodableSavedConf(t *testing.T) {
	f := newFixture(t)
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(f.dataDir, "ctr-1")
	if err := os.WriteFile(saved, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := f.run(t, f.env("DEL"), f.conf()); code != 0 {
		t.Fatalf("DEL: exit %d, %s", code, out)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("undecodable saved configuration kept (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(f.pluginDir, "calls")); !os.IsNotExist(err) {
		t.Error("delegate called for an undecodable saved configuration")
	}
}

func TestCommandErrors(t *testing.T) {
	f := newFixture(t)
	without := func(key string) []string {
		var env []string
		for _, kv := range f.env("ADD") {
			if !strings.HasPrefix(kv, key+"=") {
				env = append(env, kv)
			}
		}
		return env
	}
	tests := []struct {
		name     string
		env      []string
		conf     string
		wantCode int
		wantMsg  string
	}{
		{"no command", without("CNI_COMMAND"), f.conf(), CodeInvalidEnvironment, `CNI_COMMAND ""`},
		{"unknown command", f.env("ATTACH"), f.conf(), CodeInvalidEnvironment, `CNI_COMMAND "ATTACH"`},
		{"no netns", without("CNI_NETNS"), f.conf(), CodeInvalidEnvironment, "CNI_NETNS is not set"},
		{"no ifname", without("CNI_IFNAME"), f.conf(), CodeInvalidEnvironment, "CNI_IFNAME is not set"},
		{"no path", without("CNI_PATH"), f.conf(), CodeInvalidEnvironment, "CNI_PATH is not set"},
		{"container id escapes", f.env("ADD", "CNI_CONTAINERID=../../etc/x"), f.conf(), CodeInvalidEnvironment, `CNI_CONTAINERID "../../etc/x"`},
		{"bad json", f.env("ADD"), `{"name":`, CodeDecodingFailure, "network configuration"},
		{"bad version", f.env("ADD"), `{"cniVersion":"9.9.9","name":"n"}`, CodeIncompatibleVersion, `cniVersion "9.9.9"`},
		{"no subnet file", f.env("ADD"), `{"name":"n","subnetFile":"` + f.dir + `/none"}`, CodeInvalidConfig, "none: no such file"},
		{"no delegate", f.env("ADD"), `{"name":"n","subnetFile":"` + f.subnetFile + `","dataDir":"` + f.dataDir + `","delegate":{"type":"macvlan"}}`, CodeInternal, `delegate plugin "macvlan" not found`},
		{"delegate path", f.env("ADD"), `{"name":"n","subnetFile":"` + f.subnetFile + `","dataDir":"` + f.dataDir + `","delegate":{"type":"../bin/bridge"}}`, CodeInternal, `delegate type "../bin/bridge"`},
		{"delegate fails", f.env("ADD", "FAKE_FAIL=1"), f.conf(), 11, "delegate ADD: fake failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.run(t, tt.env, tt.conf)
			var e Error
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("stdout %q is not a CNI error: %v", out, err)
			}
			if code != 1 || e.Code != tt.wantCode || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("exit %d, error %+v; want exit 1, code %d, message containing %q", code, e, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestVersionCheckGCStatus(t *testing.T) {
	f := newFixture(t)
	code, out := f.run(t, f.env("VERSION"), "")
	want := `{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}` + "\n"
	if code != 0 || out != want {
		t.Errorf("VERSION: exit %d, %q; want %q", code, out, want)
	}
	for _, cmd := range []string{"CHECK", "GC", "STATUS"} {
		if code, out := f.run(t, f.env(cmd), f.conf()); code != 0 || out != "" {
			t.Errorf("%s: exit %d, stdout %q; want success and no output", cmd, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(f.pluginDir, "calls")); !os.IsNotExist(err) {
		t.Error("CHECK, GC or STATUS called the delegate")
	}
}
