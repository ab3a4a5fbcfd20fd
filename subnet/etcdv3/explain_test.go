package etcdv3_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet/etcdv3"
)

func TestExplainTLSError(t *testing.T) {
	withFiles := etcdv3.Options{CAFile: "/etc/ca.pem", CertFile: "/etc/client.pem", KeyFile: "/etc/client-key.pem"}
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}
	tests := []struct {
		name string
		err  error
		opts etcdv3.Options
		want string // "" = returned unchanged
	}{
		{"unknown CA, CA file given", x509.UnknownAuthorityError{}, withFiles, "not signed by the CA in --etcd-cafile /etc/ca.pem"},
		{"unknown CA, system roots", x509.UnknownAuthorityError{}, etcdv3.Options{}, "give its CA with --etcd-cafile"},
		{"wrong host name", x509.HostnameError{Host: "etcd.example"}, withFiles, `not valid for "etcd.example"`},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, withFiles, "expired"},
		{"client cert refused", alert, withFiles, "rejected the client certificate --etcd-certfile /etc/client.pem"},
		{"client cert required", alert, etcdv3.Options{CAFile: "/etc/ca.pem"}, "requires a client certificate"},
		{"wrapped", &url.Error{Op: "Get", URL: "https://x", Err: fmt.Errorf("handshake: %w", x509.UnknownAuthorityError{})}, withFiles, "--etcd-cafile /etc/ca.pem"},
		{"not TLS", errors.New("connection refused"), withFiles, ""},
		{"local op error", &net.OpError{Op: "dial", Err: errors.New("refused")}, withFiles, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := etcdv3.ExplainTLSError(tc.err, tc.opts)
			if !errors.Is(got, tc.err) {
				t.Errorf("explained error %v does not wrap %v", got, tc.err)
			}
			switch {
			case tc.want == "" && got.Error() != tc.err.Error():
				t.Errorf("error changed to %q, want it unchanged", got)
			case tc.want != "" && !strings.Contains(got.Error(), tc.want):
				t.Errorf("error %q does not mention %q", got, tc.want)
			}
		})
	}
}
