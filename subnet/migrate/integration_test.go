package migrate_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/etcdv3"
	"github.com/overlayd/overlayd/subnet/migrate"
)

// realEnv is one etcd with both APIs: the v2 registry is the source, the
// v3 registry's client the destination (the keyspaces are separate).
type realEnv struct {
	v2     *etcdv2.Registry
	v3     *etcdv3.Registry
	rawV2  client.KeysAPI
	raw    *clientv3.Client
	prefix string
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newRealEnv(t *testing.T) realEnv {
	t.Helper()
	server := etcdtest.StartT(t, etcdtest.Options{EnableV2: true})
	endpoints := []string{server.Endpoint()}
	const prefix = "/coreos.com/network"
	v2, err := etcdv2.New(context.Background(), etcdv2.Options{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v2.Close() })
	v3, err := etcdv3.New(context.Background(), etcdv3.Options{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v3.Close() })
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	return realEnv{v2: v2, v3: v3, rawV2: client.NewKeysAPI(c), raw: v3.Client(), prefix: prefix}
}

func (e realEnv) migrate(t *testing.T, o migrate.Options) migrate.Report {
	t.Helper()
	report, err := migrate.Migrate(ctxT(t), e.v2, migrate.NewEtcdV3(e.raw), o)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return report
}

func (e realEnv) revision(t *testing.T) int64 {
	t.Helper()
	resp, err := e.raw.Get(ctxT(t), "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func (e realEnv) v3Key(t *testing.T, key string) (string, clientv3.LeaseID) {
	t.Helper()
	resp, err := e.raw.Get(ctxT(t), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("v3 get %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease)
}

// seedV2 writes the config and three leases as flanneld v0.11 nodes do:
// node 1 with a 24 h TTL, node 2 with 1 h, node 3 a reservation.
func (e realEnv) seedV2(t *testing.T) {
	t.Helper()
	if _, err := e.rawV2.Set(ctxT(t), configKey, configJSON, nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		sn, value string
		ttl       time.Duration
	}{{"10.244.1.0/24", node1V2, 24 * time.Hour}, {"10.244.2.0/24", node2V2, time.Hour}} {
		attrs, err := subnet.UnmarshalLeaseAttrs([]byte(l.value))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.v2.CreateLease(ctxT(t), subnet.LeaseID{Subnet: netip.MustParsePrefix(l.sn)}, attrs, l.ttl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rawV2.Set(ctxT(t), key3, node3V2, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateRealEtcd(t *testing.T) {
	e := newRealEnv(t)
	e.seedV2(t)

	t.Run("dry run writes nothing", func(t *testing.T) {
		before := e.revision(t)
		report := e.migrate(t, migrate.Options{DryRun: true})
		if report.Count(migrate.Copied) != 4 || e.revision(t) != before {
			t.Fatalf("dry run: %+v, revision %d -> %d; want 4 to copy and no write", report.Items, before, e.revision(t))
		}
	})
	t.Run("copies config and leases", func(t *testing.T) {
		report := e.migrate(t, migrate.Options{})
		if report.Count(migrate.Copied) != 4 {
			t.Fatalf("report = %+v, want 4 copied", report.Items)
		}
		checkV3Contents(t, e)
	})
	t.Run("second run is a no-op", func(t *testing.T) {
		before := e.revision(t)
		report := e.migrate(t, migrate.Options{})
		if report.Count(migrate.AlreadyPresent) != 4 || e.revision(t) != before {
			t.Fatalf("second run: %+v, revision %d -> %d; want 4 already present, no write", report.Items, before, e.revision(t))
		}
	})
	const squatter = `{"PublicIP":"192.0.2.99","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:aa:aa:aa:aa:99"}}`
	t.Run("conflict refused", func(t *testing.T) {
		if _, err := e.raw.Put(ctxT(t), key2, squatter); err != nil {
			t.Fatal(err)
		}
		report := e.migrate(t, migrate.Options{})
		if item(t, report, key2).Outcome != migrate.Conflict {
			t.Fatalf("report = %+v, want a conflict on %s", report.Items, key2)
		}
		if value, _ := e.v3Key(t, key2); value != squatter {
			t.Fatalf("conflicting key rewritten to %s", value)
		}
	})
	t.Run("force overwrites", func(t *testing.T) {
		report := e.migrate(t, migrate.Options{Force: true})
		if item(t, report, key2).Outcome != migrate.Overwritten {
			t.Fatalf("report = %+v, want %s overwritten", report.Items, key2)
		}
		if value, lease := e.v3Key(t, key2); value != node2V3 || lease == clientv3.NoLease {
			t.Fatalf("after --force: %s on lease %x, want %s with a TTL", value, int64(lease), node2V3)
		}
	})
	t.Run("nodes restarted on v3 keep their subnet", func(t *testing.T) {
		checkRestartKeepsSubnet(t, e, node1V2, "10.244.1.0/24", false)
		checkRestartKeepsSubnet(t, e, node3V2, "10.244.3.0/24", true)
	})
}

// checkV3Contents reads the migrated keys back through etcd v3.
func checkV3Contents(t *testing.T, e realEnv) {
	t.Helper()
	if config, _ := e.v3Key(t, configKey); config != configJSON {
		t.Errorf("v3 config = %s, want %s", config, configJSON)
	}
	for _, l := range []struct {
		key, value string
		ttl        time.Duration // 0: reservation
	}{{key1, node1V3, 24 * time.Hour}, {key2, node2V3, time.Hour}, {key3, node3V3, 0}} {
		value, lease := e.v3Key(t, l.key)
		if value != l.value {
			t.Errorf("v3 %s = %s, want %s", l.key, value, l.value)
		}
		if l.ttl == 0 {
			if lease != clientv3.NoLease {
				t.Errorf("reservation %s migrated with etcd lease %x", l.key, int64(lease))
			}
			continue
		}
		resp, err := e.raw.TimeToLive(ctxT(t), lease)
		if err != nil {
			t.Fatalf("TimeToLive of %s's lease: %v", l.key, err)
		}
		granted := time.Duration(resp.GrantedTTL) * time.Second
		if granted > l.ttl || granted < l.ttl-10*time.Second {
			t.Errorf("%s: etcd lease granted %s, want the remaining v2 TTL (just under %s)", l.key, granted, l.ttl)
		}
	}
	list, err := e.v3.ListLeases(ctxT(t))
	if err != nil || len(list.Leases) != 3 || len(list.Skipped) != 0 {
		t.Fatalf("etcdv3 ListLeases = %+v, %v; want 3 leases", list, err)
	}
}

// checkRestartKeepsSubnet runs the lease manager of the node that wrote
// v2Value, now on the v3 API: it must get the same subnet back.
func checkRestartKeepsSubnet(t *testing.T, e realEnv, v2Value, wantSubnet string, reservation bool) {
	t.Helper()
	cfg, err := subnet.ParseConfig([]byte(configJSON))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(v2Value))
	if err != nil {
		t.Fatal(err)
	}
	attrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"` + vtepMACOf(t, v2Value) + `"}`)
	m, err := subnet.NewManager(subnet.ManagerOptions{Registry: e.v3, Config: cfg, Attrs: attrs})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := m.Acquire(ctxT(t))
	if err != nil {
		t.Fatalf("Acquire on v3 for %s: %v", attrs.PublicIP, err)
	}
	if lease.Subnet != netip.MustParsePrefix(wantSubnet) || lease.IsReservation() != reservation {
		t.Errorf("node %s acquired %s (reservation %v), want %s (reservation %v)",
			attrs.PublicIP, lease.Subnet, lease.IsReservation(), wantSubnet, reservation)
	}
}

func vtepMACOf(t *testing.T, value string) string {
	t.Helper()
	var lease struct{ BackendData struct{ VtepMAC string } }
	if err := json.Unmarshal([]byte(value), &lease); err != nil || lease.BackendData.VtepMAC == "" {
		t.Fatalf("no VtepMAC in %s: %v", value, err)
	}
	return lease.BackendData.VtepMAC
}
