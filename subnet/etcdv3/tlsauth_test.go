package etcdv3_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet/etcdv3"
	"github.com/overlayd/overlayd/subnet/registrytest"
)

// errorCase is one set of options and what its round trip must say.
type errorCase struct {
	name        string
	opts        etcdv3.Options
	wantInError []string // nil: success expected
}

func (tc errorCase) run(t *testing.T) {
	t.Parallel()
	registrytest.CheckMentions(t, roundTrip(tc.opts, tc.deadline()), tc.wantInError)
}

// deadline is how long the round trip may take: a case that must fail
// waits out a short one (the client only says "deadline exceeded" then, and
// the registry must explain it); a case that must succeed gets a long one,
// which costs nothing when it does and keeps a loaded machine from failing it.
func (tc errorCase) deadline() time.Duration {
	if tc.wantInError == nil {
		return 10 * time.Second
	}
	return time.Second
}

// roundTrip asks etcd for the (missing) config within the deadline: nil
// proves the request went through.
func roundTrip(o etcdv3.Options, deadline time.Duration) error {
	o.DialTimeout = 2 * time.Second
	return registrytest.RoundTrip(func(ctx context.Context) (*etcdv3.Registry, error) { return etcdv3.New(ctx, o) }, deadline)
}

// TestTLSErrorsAreExplained: the v3 client reports only "context deadline
// exceeded" when it cannot connect; the registry must say why.
func TestTLSErrorsAreExplained(t *testing.T) {
	trusted, other := newTestPKI(t), newTestPKI(t)
	server := etcdtest.StartT(t, etcdtest.Options{
		Scheme: "https",
		ExtraArgs: []string{"--cert-file", trusted.serverCert, "--key-file", trusted.serverKey,
			"--client-cert-auth", "--trusted-ca-file", trusted.caFile},
	})
	endpoints := []string{server.Endpoint()}
	tests := []errorCase{
		{"right files", etcdv3.Options{CAFile: trusted.caFile, CertFile: trusted.clientCert, KeyFile: trusted.clientKey}, nil},
		{"wrong CA", etcdv3.Options{CAFile: other.caFile, CertFile: trusted.clientCert, KeyFile: trusted.clientKey},
			[]string{"certificate signed by unknown authority", "--etcd-cafile " + other.caFile, server.Endpoint()}},
		{"client cert of another CA", etcdv3.Options{CAFile: trusted.caFile, CertFile: other.clientCert, KeyFile: other.clientKey},
			[]string{"etcd rejected the client certificate --etcd-certfile " + other.clientCert, "--trusted-ca-file"}},
		{"no client cert", etcdv3.Options{CAFile: trusted.caFile},
			[]string{"requires a client certificate", "--etcd-certfile"}},
	}
	for _, tc := range tests {
		tc.opts.Endpoints = endpoints
		t.Run(tc.name, tc.run)
	}
}

func TestAuthErrorsAreExplained(t *testing.T) {
	server := etcdtest.StartT(t, etcdtest.Options{})
	enableAuth(t, server.Endpoint(), "right")
	endpoints := []string{server.Endpoint()}
	tests := []errorCase{
		{"right password", etcdv3.Options{Username: "root", Password: "right"}, nil},
		{"wrong password", etcdv3.Options{Username: "root", Password: "wrong"},
			[]string{"authentication failed", `etcd rejected the credentials of user "root"`, "--etcd-password"}},
		{"no credentials", etcdv3.Options{},
			[]string{"authentication enabled", "--etcd-username"}},
		{"user without permission", etcdv3.Options{Username: "nobody", Password: "pw"},
			[]string{"permission denied", `user "nobody" may not access /coreos.com/network`}},
	}
	for _, tc := range tests {
		tc.opts.Endpoints = endpoints
		t.Run(tc.name, tc.run)
	}
}

func TestUnreachableEndpointIsExplained(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	tc := errorCase{"nothing listening", etcdv3.Options{Endpoints: []string{"http://127.0.0.1:1"}},
		[]string{"context deadline exceeded", "endpoint http://127.0.0.1:1", "connection refused"}}
	tc.run(t)
}

// enableAuth creates root (with the root role) and nobody (without any
// role) and turns v3 auth on.
func enableAuth(t *testing.T, endpoint, password string) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.UserAdd(ctx, "root", password); err != nil {
		t.Fatalf("add user root: %v", err)
	}
	if _, err := c.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("grant root role: %v", err)
	}
	if _, err := c.UserAdd(ctx, "nobody", "pw"); err != nil {
		t.Fatalf("add user nobody: %v", err)
	}
	if _, err := c.AuthEnable(ctx); err != nil {
		t.Fatalf("enable auth: %v", err)
	}
}
