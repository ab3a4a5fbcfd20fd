package registrytest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

func testConfigMissing(t *testing.T, env Env) {
	_, err := env.Registry.GetNetworkConfig(testContext(t))
	if !errors.Is(err, subnet.ErrConfigNotFound) {
		t.Fatalf("GetNetworkConfig on empty keyspace: err = %v, want ErrConfigNotFound", err)
	}
}

func testConfigPresent(t *testing.T, env Env) {
	const config = `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`
	mustPutRaw(t, env, subnet.ConfigKey(env.Prefix), config)
	got, err := env.Registry.GetNetworkConfig(testContext(t))
	if err != nil {
		t.Fatalf("GetNetworkConfig: %v", err)
	}
	if !bytes.Equal(got, []byte(config)) {
		t.Fatalf("GetNetworkConfig = %q, want %q", got, config)
	}
}

func testCreateTwice(t *testing.T, env Env) {
	before := time.Now()
	exp := mustCreate(t, env, 1, longTTL)
	checkExpiration(t, "CreateLease", exp, before, time.Now(), longTTL)
	_, err := env.Registry.CreateLease(testContext(t), leaseID(1), attrs(2), longTTL)
	if !errors.Is(err, subnet.ErrLeaseExists) {
		t.Fatalf("second CreateLease: err = %v, want ErrLeaseExists", err)
	}
	got, ok := findLease(mustList(t, env), leaseSubnet(1))
	if !ok || !sameAttrs(got.Attrs, attrs(1)) {
		t.Fatalf("after losing create: lease = %+v (found %v), want the first creator's attrs", got, ok)
	}
}

func testConcurrentCreate(t *testing.T, env Env) {
	const racers = 10
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = env.Registry.CreateLease(testContext(t), leaseID(7), attrs(i+1), longTTL)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both created %s", winner, i, leaseSubnet(7))
		case err == nil:
			winner = i
		case !errors.Is(err, subnet.ErrLeaseExists):
			t.Errorf("racer %d: err = %v, want nil or ErrLeaseExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no racer created %s: %v", leaseSubnet(7), errs)
	}
	list := mustList(t, env)
	got, ok := findLease(list, leaseSubnet(7))
	if !ok || !sameAttrs(got.Attrs, attrs(winner+1)) || len(list.Leases) != 1 {
		t.Fatalf("list = %+v, want only the winner's lease %+v", list.Leases, attrs(winner+1))
	}
}

func testListReturnsAttrs(t *testing.T, env Env) {
	full := attrs(3)
	full.PrivateIP = mustAddr("198.51.100.3")
	full.PublicIPv6 = mustAddr("2001:db8::3")
	full.BackendV6Data = []byte(`{"VNI":1,"VtepMAC":"0a:00:00:00:01:03"}`)
	want := map[int]subnet.LeaseAttrs{1: attrs(1), 2: attrs(2), 3: full}
	for n, a := range want {
		if _, err := env.Registry.CreateLease(testContext(t), leaseID(n), a, longTTL); err != nil {
			t.Fatalf("CreateLease %s: %v", leaseSubnet(n), err)
		}
	}
	list := mustList(t, env)
	if len(list.Leases) != len(want) || len(list.Skipped) != 0 || list.Revision <= 0 {
		t.Fatalf("list = %+v, want %d leases, nothing skipped, a revision", list, len(want))
	}
	for n, a := range want {
		got, ok := findLease(list, leaseSubnet(n))
		switch {
		case !ok:
			t.Errorf("lease %s missing from list", leaseSubnet(n))
		case !sameAttrs(got.Attrs, a):
			t.Errorf("lease %s attrs = %+v, want %+v", leaseSubnet(n), got.Attrs, a)
		case got.IsReservation():
			t.Errorf("lease %s created with a TTL is listed as a reservation", leaseSubnet(n))
		}
	}
}

// testCreatedOrdersByAge: Lease.Created tells which of two leases is
// older, in a list and in a watch, and an update keeps it (the peer set
// resolves overlapping leases by it).
func testCreatedOrdersByAge(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	mustCreate(t, env, 2, longTTL)
	rev := mustList(t, env).Revision
	first, _ := findLease(mustList(t, env), leaseSubnet(1))
	if _, err := env.Registry.UpdateLease(testContext(t), first, longTTL); err != nil {
		t.Fatalf("UpdateLease: %v", err)
	}
	list := mustList(t, env)
	one, _ := findLease(list, leaseSubnet(1))
	two, _ := findLease(list, leaseSubnet(2))
	if one.Created <= 0 || two.Created <= one.Created {
		t.Fatalf("Created: %s %d, %s %d; want both set, the first created (and since updated) older",
			one.Subnet, one.Created, two.Subnet, two.Created)
	}
	w := startWatch(t, env, rev)
	mustCreate(t, env, 3, longTTL)
	c := w.waitUntil(t, "add of 3", func(c collected) bool {
		_, ok := hasEvent(c.events, subnet.EventAdded, leaseSubnet(3))
		return ok
	})
	three, _ := hasEvent(c.events, subnet.EventAdded, leaseSubnet(3))
	updated, _ := hasEvent(c.events, subnet.EventAdded, leaseSubnet(1))
	if three.Lease.Created <= two.Created || updated.Lease.Created != one.Created {
		t.Errorf("watch: Created of the new lease %d (want > %d), of the updated one %d (want %d)",
			three.Lease.Created, two.Created, updated.Lease.Created, one.Created)
	}
}

func testUpdateLease(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	newAttrs := attrs(9)
	before := time.Now()
	exp, err := env.Registry.UpdateLease(testContext(t), subnet.Lease{Subnet: leaseSubnet(1), Attrs: newAttrs}, 2*longTTL)
	if err != nil {
		t.Fatalf("UpdateLease: %v", err)
	}
	checkExpiration(t, "UpdateLease", exp, before, time.Now(), 2*longTTL)
	got, ok := findLease(mustList(t, env), leaseSubnet(1))
	if !ok || !sameAttrs(got.Attrs, newAttrs) || got.IsReservation() {
		t.Fatalf("after update: lease = %+v (found %v), want attrs %+v with a TTL", got, ok, newAttrs)
	}
}

func testUpdateMissingLease(t *testing.T, env Env) {
	_, err := env.Registry.UpdateLease(testContext(t), subnet.Lease{Subnet: leaseSubnet(1), Attrs: attrs(1)}, longTTL)
	if !errors.Is(err, subnet.ErrLeaseNotFound) {
		t.Fatalf("UpdateLease of a missing key: err = %v, want ErrLeaseNotFound", err)
	}
}

func testUpdateKeepsReservation(t *testing.T, env Env) {
	value, err := subnet.MarshalLeaseAttrs(attrs(4), subnet.FormV028)
	if err != nil {
		t.Fatal(err)
	}
	mustPutRaw(t, env, subnet.LeaseKey(env.Prefix, leaseSubnet(4)), string(value))
	listed, ok := findLease(mustList(t, env), leaseSubnet(4))
	if !ok || !listed.IsReservation() {
		t.Fatalf("TTL-less key listed as %+v (found %v), want a reservation", listed, ok)
	}
	newAttrs := attrs(4)
	newAttrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"0a:00:00:00:00:ff"}`)
	exp, err := env.Registry.UpdateLease(testContext(t), subnet.Lease{Subnet: leaseSubnet(4), Attrs: newAttrs}, longTTL)
	if err != nil || !exp.IsZero() {
		t.Fatalf("UpdateLease of a reservation = %v, %v; want zero time, nil", exp, err)
	}
	got, ok := findLease(mustList(t, env), leaseSubnet(4))
	if !ok || !got.IsReservation() || !sameAttrs(got.Attrs, newAttrs) {
		t.Fatalf("after update: lease = %+v (found %v), want a reservation with %+v", got, ok, newAttrs)
	}
}

func testDeleteLease(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	mustCreate(t, env, 2, longTTL)
	if err := env.Registry.DeleteLease(testContext(t), leaseID(1)); err != nil {
		t.Fatalf("DeleteLease: %v", err)
	}
	list := mustList(t, env)
	if _, ok := findLease(list, leaseSubnet(1)); ok || len(list.Leases) != 1 {
		t.Fatalf("after delete: list = %+v, want only %s", list.Leases, leaseSubnet(2))
	}
	err := env.Registry.DeleteLease(testContext(t), leaseID(1))
	if !errors.Is(err, subnet.ErrLeaseNotFound) {
		t.Fatalf("second DeleteLease: err = %v, want ErrLeaseNotFound", err)
	}
}

// testTTLExpiry uses a 2 s TTL (etcd v3's default minimum) and sees the
// expiry as a removal carrying the attributes.
func testTTLExpiry(t *testing.T, env Env) {
	mustCreate(t, env, 1, longTTL)
	mustCreate(t, env, 5, 2*time.Second)
	w := startWatch(t, env, mustList(t, env).Revision)
	c := w.waitUntil(t, "expiry of "+leaseSubnet(5).String(), func(c collected) bool {
		_, ok := hasEvent(c.events, subnet.EventRemoved, leaseSubnet(5))
		return ok
	})
	removed, _ := hasEvent(c.events, subnet.EventRemoved, leaseSubnet(5))
	if !sameAttrs(removed.Lease.Attrs, attrs(5)) {
		t.Errorf("expiry event attrs = %+v, want %+v", removed.Lease.Attrs, attrs(5))
	}
	list := mustList(t, env)
	if _, ok := findLease(list, leaseSubnet(5)); ok || len(list.Leases) != 1 {
		t.Fatalf("after expiry: list = %+v, want only %s", list.Leases, leaseSubnet(1))
	}
}
