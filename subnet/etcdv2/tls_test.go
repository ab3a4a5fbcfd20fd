package etcdv2_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/registrytest"
)

// TestTLS runs every case against one etcd that serves the v2 API over
// mutual TLS with certificates of CA "trusted"; CA "other" signed nothing
// etcd knows.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	trusted, other := newTestCA(t, dir, "trusted"), newTestCA(t, dir, "other")
	server := etcdtest.StartT(t, etcdtest.Options{
		EnableV2: true, Scheme: "https",
		ExtraArgs: []string{"--cert-file", trusted.serverCert, "--key-file", trusted.serverKey,
			"--client-cert-auth", "--trusted-ca-file", trusted.caFile},
	})
	tests := []struct {
		name        string
		opts        etcdv2.Options
		wantInError []string // nil: success expected
		host        string   // instead of 127.0.0.1
	}{
		{"right files", etcdv2.Options{CAFile: trusted.caFile, CertFile: trusted.clientCert, KeyFile: trusted.clientKey}, nil, ""},
		{"wrong CA", etcdv2.Options{CAFile: other.caFile, CertFile: trusted.clientCert, KeyFile: trusted.clientKey},
			[]string{"certificate signed by unknown authority", "--etcd-cafile " + other.caFile}, ""},
		{"client cert of another CA", etcdv2.Options{CAFile: trusted.caFile, CertFile: other.clientCert, KeyFile: other.clientKey},
			[]string{"etcd rejected the client certificate --etcd-certfile " + other.clientCert, "--trusted-ca-file"}, ""},
		{"no client cert", etcdv2.Options{CAFile: trusted.caFile},
			[]string{"requires a client certificate", "--etcd-certfile"}, ""},
		{"endpoint name not in the certificate", etcdv2.Options{CAFile: trusted.caFile, CertFile: trusted.clientCert, KeyFile: trusted.clientKey},
			[]string{`not valid for "localhost"`}, "localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Endpoints = []string{server.Endpoint()}
			if tc.host != "" {
				tc.opts.Endpoints = []string{strings.Replace(server.Endpoint(), "127.0.0.1", tc.host, 1)}
			}
			tc.opts.DialTimeout = 2 * time.Second
			registrytest.CheckMentions(t, roundTrip(tc.opts), tc.wantInError)
		})
	}
}

// roundTrip asks etcd for the (missing) config: nil proves the request
// went through.
func roundTrip(o etcdv2.Options) error {
	return registrytest.RoundTrip(func(ctx context.Context) (*etcdv2.Registry, error) { return etcdv2.New(ctx, o) }, 10*time.Second)
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name            string
		opts            etcdv2.Options
		wantInError     string
		wantErrNotExist bool
	}{
		{"missing CA", etcdv2.Options{CAFile: missing}, "CA file " + missing, true},
		{"missing cert", etcdv2.Options{CertFile: missing, KeyFile: ca.clientKey}, "cert file " + missing, true},
		{"cert without key", etcdv2.Options{CertFile: ca.clientCert}, "without a key file", false},
		{"key does not match", etcdv2.Options{CertFile: ca.clientCert, KeyFile: ca.serverKey}, ca.serverKey, false},
		{"no endpoints", etcdv2.Options{Endpoints: []string{}}, "no endpoints", false},
		{"bad endpoint", etcdv2.Options{Endpoints: []string{"127.0.0.1:2379"}}, `"127.0.0.1:2379" is not an http:// or https:// URL`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Endpoints == nil {
				tc.opts.Endpoints = []string{"https://127.0.0.1:1"}
			}
			reg, err := etcdv2.New(context.Background(), tc.opts)
			if err == nil {
				reg.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error %q does not mention %q", err, tc.wantInError)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.wantErrNotExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, !tc.wantErrNotExist, tc.wantErrNotExist)
			}
		})
	}
}
