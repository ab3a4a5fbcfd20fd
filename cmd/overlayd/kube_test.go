package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/errtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/kube"
)

func TestParseOptionsKube(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, k kubeOptions)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, k kubeOptions) {
			if k.enabled || k.netConfPath != "/etc/kube-flannel/net-conf.json" || k.apiURL != "" || k.kubeconfig != "" {
				t.Errorf("defaults %+v", k)
			}
			if k.annotations.BackendData != "flannel.alpha.coreos.com/backend-data" {
				t.Errorf("default annotation prefix gives %q", k.annotations.BackendData)
			}
		}},
		{name: "flags", args: []string{"--kube-subnet-mgr", "--kube-api-url=https://192.0.2.1:6443", "--kubeconfig-file=/etc/kubeconfig",
			"--kube-annotation-prefix=example.com", "--net-config-path=/tmp/net-conf.json"},
			check: func(t *testing.T, k kubeOptions) {
				if !k.enabled || k.apiURL != "https://192.0.2.1:6443" || k.kubeconfig != "/etc/kubeconfig" || k.netConfPath != "/tmp/net-conf.json" {
					t.Errorf("flags not applied: %+v", k)
				}
				if k.annotations.PublicIPOverwrite != "example.com/public-ip-overwrite" {
					t.Errorf("prefix not applied: %q", k.annotations.PublicIPOverwrite)
				}
			}},
		{name: "environment", env: map[string]string{"FLANNELD_KUBE_SUBNET_MGR": "true", "FLANNELD_KUBE_ANNOTATION_PREFIX": "example.org"},
			check: func(t *testing.T, k kubeOptions) {
				if !k.enabled || k.annotations.BackendType != "example.org/backend-type" {
					t.Errorf("FLANNELD_KUBE_* not applied: %+v", k)
				}
			}},
		{name: "bad url", args: []string{"--kube-api-url=192.0.2.1:6443"}, wantErr: `--kube-api-url: "192.0.2.1:6443"`},
		{name: "bad prefix", args: []string{"--kube-annotation-prefix=a b"}, wantErr: "--kube-annotation-prefix"},
		{name: "no net conf", args: []string{"--kube-subnet-mgr", "--net-config-path="}, wantErr: "--net-config-path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, env(tc.env), io.Discard)
			if !errtest.Check(t, err, tc.wantErr) {
				return
			}
			tc.check(t, o.kube)
		})
	}
}

func TestReadNetConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{name: "kube-flannel's", path: write("ok.json", `{"Network":"10.244.0.0/16","EnableNFTables":false,"Backend":{"Type":"vxlan"}}`)},
		{name: "missing", path: filepath.Join(dir, "nope.json"), wantErr: "does not exist"},
		{name: "not vxlan", path: write("hostgw.json", `{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}`), wantErr: `"host-gw" is not supported`},
		{name: "not JSON", path: write("bad.json", `{`), wantErr: "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := readNetConf(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, tc.path, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.Network.String() != "10.244.0.0/16" {
				t.Fatalf("cfg %+v, err %v", cfg, err)
			}
		})
	}
}

func TestWaitForNetConfRetriesUntilUsable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net-conf.json")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan *subnet.Config, 1)
	go func() {
		cfg, _ := waitForNetConf(ctx, path, subnet.RealClock(), log)
		done <- cfg
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := os.WriteFile(path, []byte(`{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := <-done
	if cfg == nil || cfg.Network.String() != "10.244.0.0/16" {
		t.Fatalf("cfg %+v", cfg)
	}
	if n := strings.Count(logs.String(), "does not exist"); n != 1 {
		t.Errorf("the missing file was logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestKubePreviousVtepMAC(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		prev subnet.LeaseAttrs
		want string
	}{
		{"flannel v0.28", subnet.LeaseAttrs{BackendType: "vxlan", BackendData: []byte(`{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`)}, "c6:d2:32:6f:8f:44"},
		{"not annotated", subnet.LeaseAttrs{}, ""},
		{"other backend", subnet.LeaseAttrs{BackendType: "host-gw", BackendData: []byte(`null`)}, ""},
		{"bad mac", subnet.LeaseAttrs{BackendType: "vxlan", BackendData: []byte(`{"VtepMAC":"zz"}`)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &kubeSource{own: kube.OwnNode{Name: "n", Previous: tc.prev}, log: log}
			mac := k.previousVtepMAC(t.Context(), netip.MustParseAddr("192.0.2.1"))
			got := ""
			if len(mac) > 0 {
				got = net.HardwareAddr(mac).String()
			}
			if got != tc.want {
				t.Errorf("MAC %q, want %q", got, tc.want)
			}
		})
	}
}
