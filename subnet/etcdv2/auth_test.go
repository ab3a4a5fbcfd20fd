package etcdv2_test

import (
	"context"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/registrytest"
)

// TestAuth runs every case against one etcd with v2 authentication on:
// user root (password "right") and a guest role without any permission,
// so that a request without credentials is refused too.
func TestAuth(t *testing.T) {
	server := etcdtest.StartT(t, etcdtest.Options{EnableV2: true})
	enableV2Auth(t, server.Endpoint(), "right")
	tests := []struct {
		name        string
		opts        etcdv2.Options
		wantInError []string // nil: success expected
	}{
		{"right password", etcdv2.Options{Username: "root", Password: "right"}, nil},
		{"wrong password", etcdv2.Options{Username: "root", Password: "wrong"},
			[]string{`etcd rejected the credentials of user "root"`, "--etcd-password"}},
		{"unknown user", etcdv2.Options{Username: "nobody", Password: "right"},
			[]string{`etcd rejected the credentials of user "nobody"`}},
		{"no credentials", etcdv2.Options{},
			[]string{"authentication is enabled", "--etcd-username"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Endpoints == nil {
				tc.opts.Endpoints = []string{server.Endpoint()}
			}
			registrytest.CheckMentions(t, roundTrip(tc.opts), tc.wantInError)
		})
	}
}

// enableV2Auth creates root with password, turns v2 authentication on and
// takes every permission from the guest role (which has full access by
// default).
func enableV2Auth(t *testing.T, endpoint, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.NewAuthUserAPI(c).AddUser(ctx, "root", password); err != nil {
		t.Fatalf("add v2 user root: %v", err)
	}
	if err := client.NewAuthAPI(c).Enable(ctx); err != nil {
		t.Fatalf("enable v2 auth: %v", err)
	}
	root, err := client.New(client.Config{Endpoints: []string{endpoint}, Username: "root", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.NewAuthRoleAPI(root).RevokeRoleKV(ctx, "guest", []string{"/*"}, client.ReadWritePermission); err != nil {
		t.Fatalf("revoke the guest role's access: %v", err)
	}
}
