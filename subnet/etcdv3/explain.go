package etcdv3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// ExplainTLSError adds a hint naming the file or flag to fix when err was
// caused by TLS (an untrusted or mismatched server certificate, a client
// certificate etcd refused). Other errors are
// returned unchanged. The etcd v2 registry uses it too.
func ExplainTLSError(err error, o Options) error {
	if hint := tlsHint(err, o); hint != "" {
		return fmt.Errorf("%w (hint: %s)", err, hint)
	}
	return err
}

func tlsHint(err error, o Options) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &unknownCA) && o.CAFile == "":
		return "etcd's server certificate is not signed by a CA the system trusts: give its CA with --etcd-cafile"
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("etcd's server certificate is not signed by the CA in --etcd-cafile %s: give the CA that signed etcd's --cert-file", o.CAFile)
	case errors.As(err, &hostname):
		return fmt.Sprintf("etcd's server certificate is not valid for %q: use an endpoint address listed in the certificate", hostname.Host)
	case errors.As(err, &invalid):
		return "etcd's server certificate is expired, not yet valid or not usable for a server"
	case isRemoteTLSAlert(err) && o.CertFile == "":
		return "etcd refused the TLS handshake: it requires a client certificate: give --etcd-certfile and --etcd-keyfile"
	case isRemoteTLSAlert(err):
		return fmt.Sprintf("etcd rejected the client certificate --etcd-certfile %s: it must be signed by a CA in etcd's --trusted-ca-file", o.CertFile)
	}
	return ""
}

// isRemoteTLSAlert reports whether the peer aborted the TLS connection with
// an alert: on an etcd client port that means it refused our certificate.
func isRemoteTLSAlert(err error) bool {
	var opErr *net.OpError
	var alert tls.AlertError
	return (errors.As(err, &opErr) && opErr.Op == "remote error") || errors.As(err, &alert)
}

// explainAuthError adds a hint to the errors etcd v3 returns for missing,
// wrong or insufficient credentials.
func explainAuthError(err error, o Options) error {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Errorf("%w (hint: etcd rejected the credentials of user %q: check --etcd-username and --etcd-password)", err, o.Username)
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrInvalidAuthToken) && o.Username == "":
		return fmt.Errorf("%w (hint: etcd has authentication enabled: give --etcd-username and --etcd-password)", err)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("%w (hint: user %q may not access %s)", err, o.Username, o.Prefix)
	}
	return err
}
