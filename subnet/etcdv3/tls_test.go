package etcdv3_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv3"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                           string
	caFile, serverCert, serverKey string
	clientCert, clientKey, notPEM string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	pki := etcdtest.NewPKI(t, dir, "overlayd-test")
	p := testPKI{dir: dir, caFile: pki.CAFile, serverCert: pki.ServerCert, serverKey: pki.ServerKey,
		clientCert: pki.ClientCert, clientKey: pki.ClientKey}
	p.notPEM = filepath.Join(dir, "not-pem.txt")
	if err := os.WriteFile(p.notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	p := newTestPKI(t)
	missing := filepath.Join(p.dir, "missing.pem")
	tests := []struct {
		name            string
		opts            etcdv3.Options
		wantInError     []string
		wantErrNotExist bool
	}{
		{"missing CA", etcdv3.Options{CAFile: missing}, []string{"CA file " + missing}, true},
		{"CA not PEM", etcdv3.Options{CAFile: p.notPEM}, []string{"CA file " + p.notPEM, "no PEM certificate"}, false},
		{"missing cert", etcdv3.Options{CertFile: missing, KeyFile: p.clientKey}, []string{"cert file " + missing}, true},
		{"missing key", etcdv3.Options{CertFile: p.clientCert, KeyFile: missing}, []string{"key file " + missing}, true},
		{"cert without key", etcdv3.Options{CertFile: p.clientCert}, []string{"cert file " + p.clientCert, "without a key file"}, false},
		{"key without cert", etcdv3.Options{KeyFile: p.clientKey}, []string{"key file " + p.clientKey, "without a cert file"}, false},
		{"key does not match", etcdv3.Options{CertFile: p.clientCert, KeyFile: p.serverKey}, []string{p.clientCert, p.serverKey}, false},
		{"cert not PEM", etcdv3.Options{CertFile: p.notPEM, KeyFile: p.clientKey}, []string{p.notPEM}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Endpoints = []string{"https://127.0.0.1:1"}
			reg, err := etcdv3.New(context.Background(), tc.opts)
			if err == nil {
				reg.Close()
				t.Fatal("New succeeded, want an error")
			}
			for _, want := range tc.wantInError {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if errors.Is(err, fs.ErrNotExist) != tc.wantErrNotExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, !tc.wantErrNotExist, tc.wantErrNotExist)
			}
		})
	}
}

func TestNewRequiresEndpoints(t *testing.T) {
	if _, err := etcdv3.New(context.Background(), etcdv3.Options{}); err == nil {
		t.Fatal("New without endpoints succeeded, want an error")
	}
}

func TestMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	server := etcdtest.StartT(t, etcdtest.Options{
		Scheme: "https",
		ExtraArgs: []string{"--cert-file", p.serverCert, "--key-file", p.serverKey,
			"--client-cert-auth", "--trusted-ca-file", p.caFile},
	})
	reg, err := etcdv3.New(context.Background(), etcdv3.Options{
		Endpoints: []string{server.Endpoint()},
		CAFile:    p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := reg.GetNetworkConfig(ctx); !errors.Is(err, subnet.ErrConfigNotFound) {
		t.Fatalf("GetNetworkConfig over TLS: %v, want ErrConfigNotFound (a successful round trip)", err)
	}
}
