package etcdv2_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/registrytest"
)

// Values flanneld v0.11.0 wrote on the v2 API (docs/compatibility.md, "What flanneld leaves on a node").
const (
	observedNode1Value = `{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`
	observedNode2Value = `{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:0a:46:7c:72:f9"}}`
)

var (
	observedNode1Subnet = netip.MustParsePrefix("10.244.15.0/24")
	observedNode2Subnet = netip.MustParsePrefix("10.244.7.0/24")
)

// eventHistory is how many events etcd v2 keeps for watches (keyspace-wide).
const eventHistory = 1000

// fixture is a registry on its own prefix of a shared etcd, plus a raw v2
// client to look behind its back.
type fixture = registrytest.Fixture[*etcdv2.Registry, client.KeysAPI]

func ctxT(t *testing.T) context.Context { return registrytest.Context(t, 30*time.Second) }

func rawKeys(t *testing.T, endpoint string) client.KeysAPI {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatalf("raw etcd v2 client: %v", err)
	}
	return client.NewKeysAPI(c)
}

// TestRegistry runs every etcd-backed test on one server, each on its own
// prefix, one after another (the v2 event history is server-wide).
func TestRegistry(t *testing.T) {
	server := etcdtest.StartT(t, etcdtest.Options{EnableV2: true})
	impl := registrytest.Impl[*etcdv2.Registry, client.KeysAPI]{
		Open: func(ctx context.Context, prefix string) (*etcdv2.Registry, error) {
			return etcdv2.New(ctx, etcdv2.Options{Endpoints: []string{server.Endpoint()}, Prefix: prefix})
		},
		Raw: rawKeys(t, server.Endpoint()),
		PutRaw: func(ctx context.Context, raw client.KeysAPI, key, value string) error {
			_, err := raw.Set(ctx, key, value, nil)
			return err
		},
		LoseHistory: pushOutHistory,
		Timeout:     30 * time.Second,
	}
	registrytest.Suite(t, impl, []registrytest.Test[*etcdv2.Registry, client.KeysAPI]{
		{Name: "StoredValueIsV011JSON", Run: testStoredValueIsV011JSON},
		{Name: "IPv6AttrsUseV028Form", Run: testIPv6AttrsUseV028Form},
		{Name: "IPv6SubnetRefused", Run: testIPv6SubnetRefused},
		{Name: "ReadsFlanneldValues", Run: testReadsFlanneldValues},
		{Name: "ExpirationFromRemainingTTL", Run: testExpirationFromRemainingTTL},
		{Name: "UpdateRestartsTTL", Run: testUpdateRestartsTTL},
		{Name: "UpdateLosesRaceRetries", Run: testUpdateLosesRaceRetries},
		{Name: "ListEmptyGivesWatchableIndex", Run: testListEmptyGivesWatchableIndex},
		{Name: "DirectoryRemovalLosesHistory", Run: testDirectoryRemovalLosesHistory},
		{Name: "HistoryLostWhileWatching", Run: testHistoryLostWhileWatching},
		{Name: "ErrorsNameTheSubnet", Run: testErrorsNameTheSubnet},
	})
}

// pushOutHistory writes more unrelated events than etcd v2 keeps, outside
// any test prefix: the history is keyspace-wide, so every earlier index of
// every directory is then gone.
func pushOutHistory(ctx context.Context, raw client.KeysAPI) error {
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range eventHistory/writers + 2 {
				if _, err := raw.Set(ctx, fmt.Sprintf("/overlayd-noise/%d", w), fmt.Sprint(i), nil); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func rawNode(t *testing.T, f fixture, sn netip.Prefix) *client.Node {
	t.Helper()
	resp, err := f.Raw.Get(ctxT(t), f.Key(sn), nil)
	if err != nil {
		t.Fatalf("raw get %s: %v", f.Key(sn), err)
	}
	return resp.Node
}

func testStoredValueIsV011JSON(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	node := rawNode(t, f, observedNode2Subnet)
	if node.Value != observedNode2Value {
		t.Errorf("stored value\n got %s\nwant %s", node.Value, observedNode2Value)
	}
	if node.TTL < 3590 || node.TTL > 3600 {
		t.Errorf("stored key TTL = %ds, want 3600", node.TTL)
	}
}

func testIPv6AttrsUseV028Form(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	attrs.PublicIPv6 = netip.MustParseAddr("2001:db8::2")
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	const want = `{"PublicIP":"192.0.2.2","PublicIPv6":"2001:db8::2","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:0a:46:7c:72:f9"}}`
	if got := rawNode(t, f, observedNode2Subnet).Value; got != want {
		t.Errorf("stored value\n got %s\nwant %s", got, want)
	}
}

func testReadsFlanneldValues(t *testing.T, f fixture) {
	if _, err := f.Raw.Set(ctxT(t), f.Key(observedNode1Subnet), observedNode1Value, &client.SetOptions{TTL: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Raw.Set(ctxT(t), f.Key(observedNode2Subnet), observedNode2Value, nil); err != nil {
		t.Fatal(err)
	}
	bySubnet := registrytest.ListBySubnet(t, ctxT(t), f.Reg, 2)
	peer := bySubnet[observedNode1Subnet]
	if peer.Attrs.PublicIP != netip.MustParseAddr("192.0.2.1") || peer.Attrs.BackendType != "vxlan" ||
		string(peer.Attrs.BackendData) != `{"VtepMAC":"5a:8e:b7:a6:d8:a1"}` {
		t.Errorf("flanneld lease attrs = %+v", peer.Attrs)
	}
	if until := time.Until(peer.Expiration); until < 23*time.Hour || until > 24*time.Hour {
		t.Errorf("flanneld lease expires in %s, want about 24h", until)
	}
	if again, err := subnet.MarshalLeaseAttrs(peer.Attrs, subnet.FormV011); err != nil || string(again) != observedNode1Value {
		t.Errorf("re-encoded flanneld value = %s, %v; want %s", again, err, observedNode1Value)
	}
	if !bySubnet[observedNode2Subnet].IsReservation() {
		t.Errorf("TTL-less flanneld key = %+v, want a reservation", bySubnet[observedNode2Subnet])
	}
}

// skewedKeys moves every absolute expiration etcd reports by skew, as a
// server whose wall clock is off by skew would.
type skewedKeys struct {
	client.KeysAPI
	skew time.Duration
}

func (k skewedKeys) shift(resp *client.Response, err error) (*client.Response, error) {
	if resp != nil {
		k.shiftNode(resp.Node)
	}
	return resp, err
}

func (k skewedKeys) shiftNode(n *client.Node) {
	if n == nil {
		return
	}
	if n.Expiration != nil {
		e := n.Expiration.Add(k.skew)
		n.Expiration = &e
	}
	for _, c := range n.Nodes {
		k.shiftNode(c)
	}
}

func (k skewedKeys) Get(ctx context.Context, key string, opts *client.GetOptions) (*client.Response, error) {
	return k.shift(k.KeysAPI.Get(ctx, key, opts))
}

func (k skewedKeys) Set(ctx context.Context, key, value string, opts *client.SetOptions) (*client.Response, error) {
	return k.shift(k.KeysAPI.Set(ctx, key, value, opts))
}

// testExpirationFromRemainingTTL: expirations are our clock plus the TTL
// etcd says remains, whatever etcd's own clock says (here two hours
// ahead, then two hours behind): create, update and list agree.
func testExpirationFromRemainingTTL(t *testing.T, f fixture) {
	for i, skew := range []time.Duration{2 * time.Hour, -2 * time.Hour} {
		reg := etcdv2.NewWithKeysAPI(skewedKeys{KeysAPI: f.Raw, skew: skew}, f.Prefix, nil)
		within := func(what string, got, before time.Time, ttl time.Duration) {
			t.Helper()
			if got.Before(before.Add(ttl-2*time.Second)) || got.After(time.Now().Add(ttl)) {
				t.Errorf("skew %s: %s expiration %s, want our clock + %s (%s)", skew, what, got, ttl, before.Add(ttl))
			}
		}
		sn := []netip.Prefix{observedNode1Subnet, observedNode2Subnet}[i]
		before := time.Now()
		expires, err := reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: sn}, registrytest.Attrs(t, observedNode2Value), time.Hour)
		if err != nil {
			t.Fatalf("CreateLease: %v", err)
		}
		within("CreateLease", expires, before, time.Hour)
		before = time.Now()
		expires, err = reg.UpdateLease(ctxT(t), subnet.Lease{Subnet: sn, Attrs: registrytest.Attrs(t, observedNode2Value)}, 2*time.Hour)
		if err != nil {
			t.Fatalf("UpdateLease: %v", err)
		}
		within("UpdateLease", expires, before, 2*time.Hour)
		before = time.Now()
		list, err := reg.ListLeases(ctxT(t))
		if err != nil {
			t.Fatalf("ListLeases: %v", err)
		}
		for _, l := range list.Leases {
			if l.Subnet == sn {
				within("ListLeases", l.Expiration, before, 2*time.Hour)
			}
		}
	}
}

func testUpdateRestartsTTL(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	attrs.PrivateIP = netip.MustParseAddr("198.51.100.2")
	expires, err := f.Reg.UpdateLease(ctxT(t), subnet.Lease{Subnet: observedNode2Subnet, Attrs: attrs}, 1500*time.Millisecond+2*time.Hour)
	if err != nil {
		t.Fatalf("UpdateLease: %v", err)
	}
	node := rawNode(t, f, observedNode2Subnet)
	if node.TTL < 7190 || node.TTL > 7202 || node.Expiration == nil || node.Expiration.Sub(expires).Abs() > 2*time.Second {
		t.Errorf("after update: TTL %ds expiring %v, want 2h (rounded up) expiring %s", node.TTL, node.Expiration, expires)
	}
	if !strings.Contains(node.Value, `"OverlaydPrivateIP":"198.51.100.2"`) {
		t.Errorf("after update: value %s, want the new attrs", node.Value)
	}
}

// racingKeys changes the key between the registry's read and its write
// the first time, so the compare-and-swap fails once.
type racingKeys struct {
	client.KeysAPI
	raced atomic.Bool
}

func (k *racingKeys) Get(ctx context.Context, key string, opts *client.GetOptions) (*client.Response, error) {
	resp, err := k.KeysAPI.Get(ctx, key, opts)
	if err == nil && !k.raced.Swap(true) {
		if _, err := k.KeysAPI.Set(ctx, key, resp.Node.Value, &client.SetOptions{TTL: time.Hour}); err != nil {
			return nil, err
		}
	}
	return resp, err
}

func testUpdateLosesRaceRetries(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode2Subnet}, attrs, time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	before := rawNode(t, f, observedNode2Subnet).ModifiedIndex
	keys := &racingKeys{KeysAPI: f.Raw}
	reg := etcdv2.NewWithKeysAPI(keys, f.Prefix, nil)
	if _, err := reg.UpdateLease(ctxT(t), subnet.Lease{Subnet: observedNode2Subnet, Attrs: attrs}, time.Hour); err != nil {
		t.Fatalf("UpdateLease with one lost race: %v", err)
	}
	if after := rawNode(t, f, observedNode2Subnet).ModifiedIndex; !keys.raced.Load() || after < before+2 {
		t.Errorf("modified index %d -> %d (raced %v), want the racing write and ours", before, after, keys.raced.Load())
	}
}

func testListEmptyGivesWatchableIndex(t *testing.T, f fixture) {
	list, err := f.Reg.ListLeases(ctxT(t))
	if err != nil || len(list.Leases) != 0 || list.Revision <= 0 {
		t.Fatalf("ListLeases of a missing directory = %+v, %v; want empty with an index", list, err)
	}
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode1Subnet}, registrytest.Attrs(t, observedNode1Value), time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	batch := registrytest.FirstBatch(t, f.Reg, list.Revision, 10*time.Second, "creation after an empty list")
	if len(batch.Events) != 1 || batch.Events[0].Lease.Subnet != observedNode1Subnet || batch.Revision <= list.Revision {
		t.Fatalf("watch batch = %+v, want the creation of %s after %d", batch, observedNode1Subnet, list.Revision)
	}
}

func testDirectoryRemovalLosesHistory(t *testing.T, f fixture) {
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode1Subnet}, registrytest.Attrs(t, observedNode1Value), time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	list, err := f.Reg.ListLeases(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Raw.Delete(ctxT(t), f.Prefix, &client.DeleteOptions{Recursive: true}); err != nil {
		t.Fatalf("raw recursive delete of %s: %v", f.Prefix, err)
	}
	err = f.Reg.WatchLeases(ctxT(t), list.Revision, make(chan subnet.WatchBatch, 8))
	if !errors.Is(err, subnet.ErrHistoryLost) {
		t.Fatalf("WatchLeases across a recursive delete of %s = %v, want ErrHistoryLost", f.Prefix, err)
	}
}

// testHistoryLostWhileWatching: a watch that keeps up stays valid however
// busy the rest of the keyspace is; one that restarts from an old index
// after the history moved on gets ErrHistoryLost.
func testHistoryLostWhileWatching(t *testing.T, f fixture) {
	list, err := f.Reg.ListLeases(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	out := make(chan subnet.WatchBatch, 8)
	done := make(chan error, 1)
	go func() { done <- f.Reg.WatchLeases(ctx, list.Revision, out) }()
	if err := pushOutHistory(ctxT(t), f.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reg.CreateLease(ctxT(t), subnet.LeaseID{Subnet: observedNode1Subnet}, registrytest.Attrs(t, observedNode1Value), time.Hour); err != nil {
		t.Fatalf("CreateLease: %v", err)
	}
	select {
	case batch := <-out:
		if len(batch.Events) != 1 {
			t.Fatalf("watch batch = %+v, want our creation", batch)
		}
	case err := <-done:
		t.Fatalf("live watch ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("live watch did not see the creation")
	}
	cancel()
	<-done
	err = f.Reg.WatchLeases(ctxT(t), list.Revision, make(chan subnet.WatchBatch, 8))
	if !errors.Is(err, subnet.ErrHistoryLost) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("WatchLeases from a pushed-out index = %v, want ErrHistoryLost with etcd's error 401", err)
	}
}

func testErrorsNameTheSubnet(t *testing.T, f fixture) {
	registrytest.CheckErrorsNameTheSubnet(t, f.Reg, "v2", f.Prefix, observedNode2Subnet, registrytest.Attrs(t, observedNode2Value), true)
}

// testIPv6SubnetRefused: the v2 store is IPv4-only; a lease with an IPv6
// subnet is refused with an error naming the field and the store, and
// nothing is written.
func testIPv6SubnetRefused(t *testing.T, f fixture) {
	attrs := registrytest.Attrs(t, observedNode2Value)
	attrs.PublicIPv6 = netip.MustParseAddr("2001:db8::2")
	for _, id := range []subnet.LeaseID{
		{Subnet: observedNode2Subnet, IPv6Subnet: netip.MustParsePrefix("2001:db8:0:2::/64")},
		{IPv6Subnet: netip.MustParsePrefix("2001:db8:0:3::/64")},
	} {
		_, err := f.Reg.CreateLease(ctxT(t), id, attrs, time.Hour)
		if !errors.Is(err, etcdv2.ErrIPv6Unsupported) || !strings.Contains(err.Error(), "IPv6Subnet "+id.IPv6Subnet.String()) {
			t.Errorf("CreateLease %s: %v, want ErrIPv6Unsupported naming IPv6Subnet", id, err)
		}
	}
	if list, err := f.Reg.ListLeases(ctxT(t)); err != nil || len(list.Leases) != 0 {
		t.Errorf("after refused creates: %+v, %v", list, err)
	}
}

func TestCheckConfigRefusesIPv6(t *testing.T) {
	tests := []struct{ cfg, want string }{
		{`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`, ""},
		{`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`, "config: EnableIPv6 is true: the etcd v2 store is IPv4-only"},
		{`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`, "config: EnableIPv6 is true"},
	}
	for _, tt := range tests {
		cfg, err := subnet.ParseConfig([]byte(tt.cfg))
		if err != nil {
			t.Fatal(err)
		}
		err = etcdv2.CheckConfig(cfg)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckConfig(%s) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
