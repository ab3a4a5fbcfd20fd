package etcdv3_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv3"
	"github.com/overlayd/overlayd/subnet/registrytest"
)

// Values flanneld v0.28.8 wrote (docs/compatibility.md, "What flanneld leaves on a node").
const (
	observedNode1Value = `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"d6:87:b6:fa:f7:31"}}`
	observedNode2Value = `{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"56:b3:03:00:ef:bd"}}`
)

var (
	observedNode1Subnet = netip.MustParsePrefix("10.244.99.0/24")
	observedNode2Subnet = netip.MustParsePrefix("10.244.37.0/24")
)

// fixture is a registry on its own prefix of a shared etcd, plus a raw
// client to look behind its back.
type fixture = registrytest.Fixture[*etcdv3.Registry, *clientv3.Client]

func ctxT(t *testing.T) context.Context { return registrytest.Context(t, 20*time.Second) }

// TestRegistry runs every etcd-backed test on one server, each on its own
// prefix, one after another (compaction is server-wide).
func TestRegistry(t *testing.T) {
	server := etcdtest.StartT(t, etcdtest.Options{})
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{server.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("raw etcd client: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	impl := registrytest.Impl[*etcdv3.Registry, *clientv3.Client]{
		Open: func(ctx context.Context, prefix string) (*etcdv3.Registry, error) {
			return etcdv3.New(ctx, etcdv3.Options{Endpoints: []string{server.Endpoint()}, Prefix: prefix})
		},
		Raw: raw,
		PutRaw: func(ctx context.Context, raw *clientv3.Client, key, value string) error {
			_, err := raw.Put(ctx, key, value)
			return err
		},
		LoseHistory: compactAll,
		Timeout:     20 * time.Second,
		IPv6:        true,
	}
	registrytest.Suite(t, impl, []registrytest.Test[*etcdv3.Registry, *clientv3.Client]{
		{Name: "StoredValueIsV028JSON", Run: testStoredValueIsV028JSON},
		{Name: "ReadsFlanneldValues", Run: testReadsFlanneldValues},
		{Name: "OwnLeaseExpirationIsExact", Run: testOwnLeaseExpirationIsExact},
		{Name: "UpdateMovesKeyToNewLease", Run: testUpdateMovesKeyToNewLease},
		{Name: "UpdateLeavesForeignLeaseAlone", Run: testUpdateLeavesForeignLeaseAlone},
		{Name: "LostCreateRevokesItsGrant", Run: testLostCreateRevokesItsGrant},
		{Name: "DeleteRevokesOwnLease", Run: testDeleteRevokesOwnLease},
		{Name: "ErrorsNameTheSubnet", Run: testErrorsNameTheSubnet},
	})
}

// compactAll compacts etcd up to its current revision with client.Compact.
func compactAll(ctx context.Context, c *clientv3.Client) error {
	resp, err := c.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	_, err = c.Compact(ctx, resp.Header.Revision)
	return err
}

func rawKV(t *testing.T, f fixture, sn netip.Prefix) (value string, lease clientv3.LeaseID) {
	t.Helper()
	resp, err := f.Raw.Get(ctxT(t), f.Key(sn))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get %s: %v (%d keys)", f.Key(sn), err, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease)
}

// leaseTTL returns the remaining and granted TTL of an etcd lease; -1
// remaining means it no longer exists.
func leaseTTL(t *testing.T, f fixture, id clientv3.LeaseID) (remaining, granted int64) {
	t.Helper()
	resp, err := f.Raw.TimeToLive(ctxT(t), id)
	if err != nil {
		t.Fatalf("TimeToLive %x: %v", int64(id), err)
	}
	return resp.TTL, resp.GrantedTTL
}

func rawPutWithLease(t *testing.T, f fixture, key, value string, ttl int64) clientv3.LeaseID {
	t.Helper()
	grant, err := f.Raw.Grant(ctxT(t), ttl)
	if err != nil {
		t.Fatalf("raw grant: %v", err)
	}
	if _, err := f.Raw.Put(ctxT(t), key, value, clientv3.WithLease(grant.ID)); err != nil {
		t.Fatalf("raw put %s: %v", key, err)
	}
	return grant.ID
}

func testStoredValueIsV028JSON(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	value, lease := rawKV(t, f, observedNode2Subnet)
	if value != observedNode2Value {
		t.Errorf("stored value\n got %s\nwant %s", value, observedNode2Value)
	}
	if lease == clientv3.NoLease {
		t.Fatalf("stored key has no etcd lease")
	}
	if _, granted := leaseTTL(t, f, lease); granted != 3600 {
		t.Errorf("etcd lease granted TTL = %ds, want 3600", granted)
	}
}

func testReadsFlanneldValues(t *testing.T, f fixture) {
	rawPutWithLease(t, f, f.Key(observedNode1Subnet), observedNode1Value, 86400)
	if _, err := f.Raw.Put(ctxT(t), f.Key(observedNode2Subnet), observedNode2Value); err != nil {
		t.Fatal(err)
	}
	bySubnet := registrytest.ListBySubnet(t, ctxT(t), f.Reg, 2)
	peer := bySubnet[observedNode1Subnet]
	wantPeer := subnet.LeaseAttrs{
		PublicIP:    netip.MustParseAddr("192.0.2.1"),
		BackendType: "vxlan",
		BackendData: []byte(`{"VNI":1,"VtepMAC":"d6:87:b6:fa:f7:31"}`),
	}
	if peer.Attrs.PublicIP != wantPeer.PublicIP || peer.Attrs.PublicIPv6.IsValid() || peer.Attrs.BackendType != wantPeer.BackendType ||
		string(peer.Attrs.BackendData) != string(wantPeer.BackendData) || peer.Attrs.PrivateIP.IsValid() {
		t.Errorf("flanneld lease attrs = %+v, want %+v", peer.Attrs, wantPeer)
	}
	if !peer.Expiration.Equal(etcdv3.UnknownExpiration()) {
		t.Errorf("peer lease expiration = %s, want UnknownExpiration", peer.Expiration)
	}
	if again, err := subnet.MarshalLeaseAttrs(peer.Attrs, subnet.FormV028); err != nil || string(again) != observedNode1Value {
		t.Errorf("re-encoded flanneld value = %s, %v; want %s", again, err, observedNode1Value)
	}
	if !bySubnet[observedNode2Subnet].IsReservation() {
		t.Errorf("TTL-less flanneld key = %+v, want a reservation", bySubnet[observedNode2Subnet])
	}
}

func testOwnLeaseExpirationIsExact(t *testing.T, f fixture) {
	sn := observedNode2Subnet
	start, err := f.Reg.ListLeases(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	expires, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: sn}, registrytest.Attrs(t, observedNode2Value), time.Hour)
	if err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	list, err := f.Reg.ListLeases(ctxT(t))
	if err != nil || len(list.Leases) != 1 || !list.Leases[0].Expiration.Equal(expires) {
		t.Fatalf("ListLeases = %+v, %v; want our lease expiring at %s", list.Leases, err, expires)
	}
	batch := registrytest.FirstBatch(t, f.Reg, start.Revision, 10*time.Second, "our creation")
	if len(batch.Events) != 1 || !batch.Events[0].Lease.Expiration.Equal(expires) {
		t.Fatalf("watch batch = %+v, want one event expiring at %s", batch, expires)
	}
}

func testUpdateMovesKeyToNewLease(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	sn := observedNode2Subnet
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: sn}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	_, oldLease := rawKV(t, f, sn)
	expires, err := f.Reg.UpdateLease(ctxT(t), subnet.Lease{Subnet: sn, Attrs: attrs}, 2*time.Hour)
	if err != nil {
		t.Fatalf("UpdateLease: %v", err)
	}
	_, newLease := rawKV(t, f, sn)
	if newLease == oldLease || newLease == clientv3.NoLease {
		t.Fatalf("after update the key's etcd lease is %x (was %x), want a new one", int64(newLease), int64(oldLease))
	}
	if remaining, _ := leaseTTL(t, f, oldLease); remaining != -1 {
		t.Errorf("old etcd lease still alive (TTL %ds), want it revoked", remaining)
	}
	if _, granted := leaseTTL(t, f, newLease); granted != 7200 {
		t.Errorf("new etcd lease granted TTL = %ds, want 7200", granted)
	}
	list, err := f.Reg.ListLeases(ctxT(t))
	if err != nil || len(list.Leases) != 1 || !list.Leases[0].Expiration.Equal(expires) {
		t.Fatalf("ListLeases = %+v, %v; want the update's expiration %s", list.Leases, err, expires)
	}
}

func testUpdateLeavesForeignLeaseAlone(t *testing.T, f fixture) {
	sn := observedNode1Subnet
	foreign := rawPutWithLease(t, f, f.Key(sn), observedNode1Value, 86400)
	attrs := registrytest.Attrs(t, observedNode1Value)
	attrs.PrivateIP = netip.MustParseAddr("198.51.100.1")
	before := time.Now()
	expires, err := f.Reg.UpdateLease(ctxT(t), subnet.Lease{Subnet: sn, Attrs: attrs}, time.Hour)
	if err != nil {
		t.Fatalf("UpdateLease of flanneld's lease: %v", err)
	}
	if expires.Before(before.Add(time.Hour-time.Second)) || expires.After(time.Now().Add(time.Hour)) {
		t.Errorf("expiration %s, want about an hour from %s", expires, before)
	}
	value, lease := rawKV(t, f, sn)
	if lease == foreign || !strings.Contains(value, `"OverlaydPrivateIP":"198.51.100.1"`) {
		t.Errorf("after update: value %s on lease %x, want new value on a new lease", value, int64(lease))
	}
	if remaining, _ := leaseTTL(t, f, foreign); remaining <= 0 {
		t.Errorf("foreign etcd lease was revoked (TTL %d); it may carry other keys", remaining)
	}
}

func countLeases(t *testing.T, f fixture) int {
	t.Helper()
	resp, err := f.Raw.Leases(ctxT(t))
	if err != nil {
		t.Fatalf("list etcd leases: %v", err)
	}
	return len(resp.Leases)
}

func testLostCreateRevokesItsGrant(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	before := countLeases(t, f)
	for range 3 {
		_, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour)
		if !errors.Is(err, subnet.ErrLeaseExists) {
			t.Fatalf("CreateLease of a taken subnet: %v, want ErrLeaseExists", err)
		}
	}
	if after := countLeases(t, f); after != before {
		t.Errorf("etcd leases %d -> %d after lost creates, want no leak", before, after)
	}
}

func testDeleteRevokesOwnLease(t *testing.T, f fixture) {
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, registrytest.Attrs(t, observedNode2Value), time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	_, lease := rawKV(t, f, observedNode2Subnet)
	if err := f.Reg.DeleteLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}); err != nil {
		t.Fatalf("DeleteLease: %v", err)
	}
	if remaining, _ := leaseTTL(t, f, lease); remaining != -1 {
		t.Errorf("etcd lease of a deleted key still alive (TTL %ds), want it revoked", remaining)
	}
}

func testErrorsNameTheSubnet(t *testing.T, f fixture) {
	registrytest.CheckErrorsNameTheSubnet(t, f.Reg, "v3", f.Prefix, observedNode2Subnet, registrytest.Attrs(t, observedNode2Value), false)
}
