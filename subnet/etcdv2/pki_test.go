package etcdv2_test

import (
	"testing"

	"github.com/overlayd/overlayd/internal/etcdtest"
)

// testCA is a certificate authority with a server certificate for
// 127.0.0.1 and a client certificate it signed, all as PEM files.
type testCA struct {
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
}

// newTestCA writes the files of a fresh CA named name into dir.
func newTestCA(t *testing.T, dir, name string) testCA {
	t.Helper()
	p := etcdtest.NewPKI(t, dir, name)
	return testCA{caFile: p.CAFile, serverCert: p.ServerCert, serverKey: p.ServerKey, clientCert: p.ClientCert, clientKey: p.ClientKey}
}
