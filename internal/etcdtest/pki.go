package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority with a server certificate for
// 127.0.0.1 and a client certificate it signed, written as PEM files, for
// tests of etcd over mutual TLS.
type PKI struct {
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string

	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

// NewPKI writes the files of a fresh CA named name into dir.
func NewPKI(t testing.TB, dir, name string) PKI {
	t.Helper()
	key, cert, der := makeCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	p := PKI{key: key, cert: cert, CAFile: writePEM(t, dir, name+"-ca.pem", "CERTIFICATE", der)}
	p.ServerCert, p.ServerKey = p.Issue(t, dir, name+"-server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcd"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ClientCert, p.ClientKey = p.Issue(t, dir, name+"-client", &x509.Certificate{
		Subject: pkix.Name{CommonName: "overlayd"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

// Issue signs template with the CA and writes <name>.pem and <name>-key.pem.
func (p PKI) Issue(t testing.TB, dir, name string, template *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, _, der := makeCert(t, p.key, p.cert, template)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

// MemberCert issues the certificate of one member of a cluster: valid
// for ip, for both server and client authentication (members dial each
// other on the peer port with it).
func (p PKI) MemberCert(t testing.TB, dir, name string, ip net.IP) (certFile, keyFile string) {
	t.Helper()
	return p.Issue(t, dir, name, &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IPAddresses: []net.IP{ip},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
}

// makeCert signs template with parent (self-signed when parent is nil).
func makeCert(t testing.TB, parentKey *ecdsa.PrivateKey, parent, template *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = serial
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

func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
