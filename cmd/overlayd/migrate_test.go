package main

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv2"
)

func migrateEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseMigrateOptions(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o migrateOptions)
	}{
		{"defaults", nil, nil, func(t *testing.T, o migrateOptions) {
			if strings.Join(o.endpoints, ",") != "http://127.0.0.1:4001,http://127.0.0.1:2379" ||
				o.v2Prefix != "/coreos.com/network" || o.v3Prefix != "/coreos.com/network" || o.dryRun || o.force {
				t.Errorf("defaults = %+v", o)
			}
		}},
		{"v3 prefix of its own", []string{"--etcd-prefix=/a/net", "--v3-prefix=/b/net"}, nil, func(t *testing.T, o migrateOptions) {
			if o.v2Prefix != "/a/net" || o.v3Prefix != "/b/net" {
				t.Errorf("prefixes %s -> %s", o.v2Prefix, o.v3Prefix)
			}
		}},
		{"etcd flags from the environment, never dry-run or force", []string{"--etcd-username=admin"}, map[string]string{
			"FLANNELD_ETCD_ENDPOINTS": "https://192.0.2.1:2379", "FLANNELD_ETCD_CAFILE": "/ca.pem",
			"FLANNELD_ETCD_USERNAME": "ignored", "FLANNELD_ETCD_PASSWORD": "pw",
			"FLANNELD_FORCE": "true", "FLANNELD_DRY_RUN": "true",
		}, func(t *testing.T, o migrateOptions) {
			if o.endpoints[0] != "https://192.0.2.1:2379" || o.caFile != "/ca.pem" || o.username != "admin" || o.password != "pw" {
				t.Errorf("environment not applied (or won over a flag): %+v", o)
			}
			if o.force || o.dryRun {
				t.Errorf("FLANNELD_FORCE/FLANNELD_DRY_RUN applied: %+v", o)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseMigrateOptions(tc.args, migrateEnv(tc.env), io.Discard)
			if err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			tc.check(t, o)
		})
	}
}

func TestParseMigrateOptionsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--etcd-endpoints=127.0.0.1:2379"}, `--etcd-endpoints: "127.0.0.1:2379" is not an http:// or https:// URL`},
		{[]string{"--etcd-endpoints=,"}, "names no endpoint"},
		{[]string{"--etcd-prefix=coreos.com"}, `--etcd-prefix: "coreos.com" must start with /`},
		{[]string{"--v3-prefix=net"}, `--v3-prefix: "net" must start with /`},
		{[]string{"--etcd-certfile=/c.pem"}, "must be given together"},
		{[]string{"--timeout=0s"}, "--timeout: 0s must be positive"},
		{[]string{"now"}, `unexpected argument "now"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr strings.Builder
			code := runMigrate(context.Background(), tc.args, migrateEnv(nil), io.Discard, &stderr)
			if code != migrateExitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr.String(), migrateExitUsage, tc.want)
			}
		})
	}
}

func TestMigrateHelp(t *testing.T) {
	var stderr strings.Builder
	if code := runMigrate(context.Background(), []string{"-h"}, migrateEnv(nil), io.Discard, &stderr); code != migrateExitOK {
		t.Errorf("-h exit %d, want 0", code)
	}
	for _, want := range []string{"Usage: overlayd migrate-etcd", "--force", "Exit status"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help does not mention %q:\n%s", want, stderr.String())
		}
	}
}

// migrateRun is one runMigrate call's result.
type migrateRun struct {
	code           int
	stdout, stderr string
}

func runMigrateT(t *testing.T, endpoint string, args ...string) migrateRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	args = append([]string{"--etcd-endpoints=" + endpoint}, args...)
	code := runMigrate(ctx, args, migrateEnv(nil), &stdout, &stderr)
	return migrateRun{code, stdout.String(), stderr.String()}
}

func (r migrateRun) want(t *testing.T, code int, inStdout ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range inStdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output does not contain %q:\n%s", s, r.stdout)
		}
	}
}

// TestMigrateEtcdCommand runs the command against one etcd serving both
// APIs, each step on the state the previous one left.
func TestMigrateEtcdCommand(t *testing.T) {
	server := etcdtest.StartT(t, etcdtest.Options{EnableV2: true})
	endpoint := server.Endpoint()
	seedV2ForMigrate(t, endpoint)
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const leaseKey = "/coreos.com/network/subnets/10.244.1.0-24"
	countV3 := func() int64 {
		resp, err := raw.Get(context.Background(), "/coreos.com/network/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}

	runMigrateT(t, endpoint, "--dry-run").want(t, migrateExitOK, "would copy", "dry run: nothing was written")
	if n := countV3(); n != 0 {
		t.Fatalf("--dry-run wrote %d v3 keys", n)
	}
	runMigrateT(t, endpoint).want(t, migrateExitOK, leaseKey+"  copied", "none (reservation)", "3 copied")
	if n := countV3(); n != 3 {
		t.Fatalf("%d v3 keys after migration, want config + 2 leases", n)
	}
	runMigrateT(t, endpoint).want(t, migrateExitOK, "0 copied, 0 overwritten, 3 already present")

	if _, err := raw.Put(context.Background(), leaseKey, `{"PublicIP":"192.0.2.99","BackendType":"vxlan"}`); err != nil {
		t.Fatal(err)
	}
	runMigrateT(t, endpoint).want(t, migrateExitConflicts, "conflict", "v3 holds PublicIP 192.0.2.99", "--force")
	runMigrateT(t, endpoint, "--force").want(t, migrateExitOK, leaseKey+"  overwritten")

	other := runMigrateT(t, endpoint, "--v3-prefix=/other/network")
	other.want(t, migrateExitOK, "/other/network/subnets/10.244.1.0-24  copied")

	failed := runMigrateT(t, "http://127.0.0.1:1", "--timeout=3s")
	failed.want(t, migrateExitFailed)
	if !strings.Contains(failed.stderr, "127.0.0.1:1") {
		t.Errorf("failure does not name the endpoint:\n%s", failed.stderr)
	}
}

// seedV2ForMigrate writes a config, a lease with a TTL and a reservation
// in the v2 keyspace.
func seedV2ForMigrate(t *testing.T, endpoint string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	keys := client.NewKeysAPI(c)
	if _, err := keys.Set(ctx, "/coreos.com/network/config", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Set(ctx, "/coreos.com/network/subnets/10.244.2.0-24", `{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:0a:46:7c:72:f9"}}`, nil); err != nil {
		t.Fatal(err)
	}
	reg, err := etcdv2.New(ctx, etcdv2.Options{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	attrs := subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: "vxlan",
		BackendData: []byte(`{"VtepMAC":"5a:8e:b7:a6:d8:a1"}`),
	}
	if _, err := reg.CreateLease(ctx, subnet.LeaseID{Subnet: netip.MustParsePrefix("10.244.1.0/24")}, attrs, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
}
