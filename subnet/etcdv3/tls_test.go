package etcdv3_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
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
	p := testPKI{dir: dir}
	caKey, caCert, caDER := makeCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "overlayd test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	serverKey, _, serverDER := makeCert(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcd"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.serverCert = writePEM(t, dir, "server.pem", "CERTIFICATE", serverDER)
	p.serverKey = writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", marshalKey(t, serverKey))
	clientKey, _, clientDER := makeCert(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "overlayd"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.clientCert = writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	p.clientKey = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", marshalKey(t, clientKey))
	p.notPEM = filepath.Join(dir, "not-pem.txt")
	if err := os.WriteFile(p.notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func makeCert(t *testing.T, parentKey *ecdsa.PrivateKey, parent, template *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = big.NewInt(time.Now().UnixNano())
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func marshalKey(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
