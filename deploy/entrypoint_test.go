package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

const entrypointPath = "docker/entrypoint.sh"

// TestEntrypointPicksHostIptablesMode runs the image's entrypoint in a
// fresh network namespace (the "host") with a stand-in overlayd that
// prints which iptables it would run and its arguments.
func TestEntrypointPicksHostIptablesMode(t *testing.T) {
	netnsutil.RequireRoot(t)
	dir := t.TempDir()
	legacyDir := filepath.Join(dir, "legacy")
	if err := os.MkdirAll(legacyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	legacy, err := exec.LookPath("iptables-legacy")
	if err != nil {
		t.Skip("iptables-legacy not installed")
	}
	if err := os.Symlink(legacy, filepath.Join(legacyDir, "iptables")); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "overlayd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$(command -v iptables) $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	entry, err := filepath.Abs(entrypointPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    [][]string // commands run in the namespace first
		mode     string     // OVERLAYD_IPTABLES_MODE
		wantPath string     // "" means the nft default (not the legacy dir)
		wantExit int
	}{
		{name: "fresh host is nft"},
		{name: "legacy rules win", setup: [][]string{{"iptables-legacy", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"}}, wantPath: legacyDir},
		{name: "nft rules win", setup: [][]string{
			{"iptables-legacy", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"},
			{"iptables-nft", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"},
			{"iptables-nft", "-A", "FORWARD", "-s", "192.0.2.2", "-j", "ACCEPT"},
		}},
		{name: "kubelet hint wins over counts", setup: [][]string{
			{"iptables-legacy", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"},
			{"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
		}},
		{name: "explicit mode wins", setup: [][]string{{"iptables-legacy", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT"}}, mode: "nft"},
		{name: "bad mode", mode: "xtables", wantExit: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := netnsutil.NewT(t, "ent")
			for _, c := range tt.setup {
				netnsutil.MustExec(t, ns, c...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := netnsutil.Command(ctx, ns, "env", "OVERLAYD_BIN="+fake, "OVERLAYD_LEGACY_DIR="+legacyDir,
				"OVERLAYD_IPTABLES_MODE="+tt.mode, "sh", entry, "--kube-subnet-mgr", "--ip-masq")
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d (stdout %q)", code, tt.wantExit, out)
			}
			if code != 0 {
				return
			}
			got := strings.TrimSpace(string(out))
			if !strings.HasSuffix(got, " --kube-subnet-mgr --ip-masq") {
				t.Errorf("overlayd got %q, want the arguments passed through", got)
			}
			inLegacy := strings.HasPrefix(got, legacyDir+"/")
			if inLegacy != (tt.wantPath == legacyDir) {
				t.Errorf("iptables is %q; want legacy=%t", got, tt.wantPath == legacyDir)
			}
		})
	}
}
