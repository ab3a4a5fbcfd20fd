package registrytest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func testWatchFromRevision(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	rev := mustList(t, env).Revision
	mustCreate(t, env, 2, longTTL)
	if err := env.Registry.DeleteLease(testContext(t), leaseID(1)); err != nil {
		t.Fatalf("DeleteLease: %v", err)
	}
	w := startWatch(t, env, rev)
	c := w.waitUntil(t, "add of 2 and removal of 1", func(c collected) bool {
		_, added := hasEvent(c.events, subnet.EventAdded, leaseSubnet(2))
		_, removed := hasEvent(c.events, subnet.EventRemoved, leaseSubnet(1))
		return added && removed
	})
	if _, ok := hasEvent(c.events, subnet.EventAdded, leaseSubnet(1)); ok {
		t.Errorf("watch from revision %d replayed the earlier creation of %s", rev, leaseSubnet(1))
	}
	added, _ := hasEvent(c.events, subnet.EventAdded, leaseSubnet(2))
	if !sameAttrs(added.Lease.Attrs, attrs(2)) || added.Lease.IsReservation() {
		t.Errorf("added event = %+v, want attrs %+v with a TTL", added.Lease, attrs(2))
	}
	removed, _ := hasEvent(c.events, subnet.EventRemoved, leaseSubnet(1))
	if !sameAttrs(removed.Lease.Attrs, attrs(1)) {
		t.Errorf("removed event attrs = %+v, want the deleted value %+v", removed.Lease.Attrs, attrs(1))
	}
	if c.lastRev <= rev {
		t.Errorf("batch revision %d, want > %d", c.lastRev, rev)
	}

	mustCreate(t, env, 3, longTTL)
	w.waitUntil(t, "add of 3 on a live watch", func(c collected) bool {
		_, ok := hasEvent(c.events, subnet.EventAdded, leaseSubnet(3))
		return ok
	})
}

func testWatchStopsOnCancel(t *testing.T, env Env) {
	rev := mustList(t, env).Revision
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.Registry.WatchLeases(ctx, rev, make(chan subnet.WatchBatch)) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("WatchLeases after cancel = %v, want nil or context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("WatchLeases still running %s after cancel", waitTimeout)
	}
}

// malformedKeys plants keys no flannel node could read and returns them.
func malformedKeys(t *testing.T, env Env) []string {
	t.Helper()
	good, err := subnet.MarshalLeaseAttrs(attrs(8), subnet.FormV028)
	if err != nil {
		t.Fatal(err)
	}
	dir := subnet.SubnetsDir(env.Prefix)
	raw := []struct{ key, value string }{
		{dir + "not-a-subnet", string(good)},
		{dir + "10.244.9.1-24", string(good)}, // host bits set
		{subnet.LeaseKey(env.Prefix, leaseSubnet(10)), "{not json"},
		{subnet.LeaseKey(env.Prefix, leaseSubnet(11)), `{"PublicIP":"bogus","BackendType":"vxlan"}`},
	}
	keys := make([]string, 0, len(raw))
	for _, r := range raw {
		mustPutRaw(t, env, r.key, r.value)
		keys = append(keys, r.key)
	}
	return keys
}

func testMalformedSkippedInList(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	bad := malformedKeys(t, env)
	mustCreate(t, env, 2, longTTL)
	list := mustList(t, env)
	if len(list.Leases) != 2 || len(list.Skipped) != len(bad) {
		t.Fatalf("list = %d leases, %d skipped (%+v); want 2 and %d", len(list.Leases), len(list.Skipped), list.Skipped, len(bad))
	}
	for _, key := range bad {
		if !hasSkipped(list.Skipped, key) {
			t.Errorf("malformed key %s not in Skipped with a reason: %+v", key, list.Skipped)
		}
	}
	for _, n := range []int{1, 2} {
		if got, ok := findLease(list, leaseSubnet(n)); !ok || !sameAttrs(got.Attrs, attrs(n)) {
			t.Errorf("valid lease %s = %+v (found %v), want %+v", leaseSubnet(n), got, ok, attrs(n))
		}
	}
}

func testMalformedSkippedInWatch(t *testing.T, env Env) {
	w := startWatch(t, env, mustList(t, env).Revision)
	mustCreate(t, env, 1, longTTL)
	bad := malformedKeys(t, env)
	mustCreate(t, env, 2, longTTL)
	c := w.waitUntil(t, "both valid leases", func(c collected) bool {
		_, one := hasEvent(c.events, subnet.EventAdded, leaseSubnet(1))
		_, two := hasEvent(c.events, subnet.EventAdded, leaseSubnet(2))
		return one && two
	})
	for _, key := range bad {
		if !hasSkipped(c.skipped, key) {
			t.Errorf("malformed key %s not in a batch's Skipped: %+v", key, c.skipped)
		}
	}
	if len(c.events) != 2 {
		t.Errorf("events = %+v, want only the two valid additions", c.events)
	}
}

func testHistoryLost(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	rev := mustList(t, env).Revision
	mustCreate(t, env, 2, longTTL)
	mustCreate(t, env, 3, longTTL)
	if err := env.LoseHistory(); err != nil {
		t.Fatalf("LoseHistory: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := env.Registry.WatchLeases(ctx, rev, make(chan subnet.WatchBatch, 64))
	if !errors.Is(err, subnet.ErrHistoryLost) {
		t.Fatalf("WatchLeases from lost revision %d = %v, want ErrHistoryLost", rev, err)
	}
}
