package registrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// IPv6Cases are the checks of dual-stack and IPv6-only leases, for the
// stores that hold them (etcd v3; not v2, which is IPv4-only).
func IPv6Cases() []Case {
	return []Case{
		{"DualStackKeyAndValue", testDualStackKeyAndValue},
		{"IPv6OnlyLifecycle", testIPv6OnlyLifecycle},
		{"WatchCarriesIPv6Subnet", testWatchCarriesIPv6Subnet},
	}
}

// RunIPv6 runs IPv6Cases like Run runs Cases.
func RunIPv6(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Helper()
	runCases(t, IPv6Cases(), newEnv)
}

// ipv6Subnet returns 2001:db8:0:n::/64.
func ipv6Subnet(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, byte(n)}), 64)
}

// dualID is the key of node n's dual-stack lease; v4 false: IPv6-only.
func dualID(n int, v4 bool) subnet.LeaseID {
	id := subnet.LeaseID{IPv6Subnet: ipv6Subnet(n)}
	if v4 {
		id.Subnet = leaseSubnet(n)
	}
	return id
}

// dualAttrs are node n's attributes with PublicIPv6 2001:db8:ffff::n and
// BackendV6Data; v4 false: IPv6-only (no PublicIP, no BackendData).
func dualAttrs(n int, v4 bool) subnet.LeaseAttrs {
	a := attrs(n)
	if !v4 {
		a.PublicIP, a.BackendData = netip.Addr{}, nil
	}
	a.PublicIPv6 = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 15: byte(n)})
	a.BackendV6Data = json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0a:00:00:00:06:%02x"}`, n))
	return a
}

func findID(list subnet.LeaseList, id subnet.LeaseID) (subnet.Lease, bool) {
	for _, l := range list.Leases {
		if l.ID() == id {
			return l, true
		}
	}
	return subnet.Lease{}, false
}

// testDualStackKeyAndValue: a dual-stack lease is stored under flanneld
// v0.28's key (a put of flanneld's JSON under that very key replaces it,
// it does not add a second lease) and lists back with both subnets.
func testDualStackKeyAndValue(t *testing.T, env Env) {
	id := dualID(5, true)
	if _, err := env.Registry.CreateLease(testContext(t), id, dualAttrs(5, true), longTTL); err != nil {
		t.Fatalf("CreateLease %s: %v", id, err)
	}
	if _, err := env.Registry.CreateLease(testContext(t), id, dualAttrs(6, true), longTTL); !errors.Is(err, subnet.ErrLeaseExists) {
		t.Fatalf("second CreateLease %s: %v, want ErrLeaseExists", id, err)
	}
	got, ok := findID(mustList(t, env), id)
	if !ok || !sameAttrs(got.Attrs, dualAttrs(5, true)) {
		t.Fatalf("listed %+v (found %v), want %s with %+v", got, ok, id, dualAttrs(5, true))
	}
	key := subnet.SubnetsDir(env.Prefix) + "10.244.5.0-24&2001:db8:0:5::-64"
	flanneld := `{"PublicIP":"192.0.2.5","PublicIPv6":"2001:db8:ffff::5","BackendType":"vxlan",` +
		`"BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:09"},"BackendV6Data":{"VNI":1,"VtepMAC":"0a:00:00:00:06:09"}}`
	mustPutRaw(t, env, key, flanneld)
	list := mustList(t, env)
	if len(list.Leases) != 1 || len(list.Skipped) != 0 {
		t.Fatalf("after a put under %s: %d leases, %d skipped; want the one lease (same key)", key, len(list.Leases), len(list.Skipped))
	}
	if l := list.Leases[0]; l.ID() != id || string(l.Attrs.BackendV6Data) != `{"VNI":1,"VtepMAC":"0a:00:00:00:06:09"}` {
		t.Errorf("listed %+v, want %s with flanneld's value", l, id)
	}
}

// testIPv6OnlyLifecycle: an IPv6-only lease is created under
// "0.0.0.0-0&<v6>-<len>", updated and deleted by its ID, and two of them
// are two leases.
func testIPv6OnlyLifecycle(t *testing.T, env Env) {
	a, b := dualID(1, false), dualID(2, false)
	for n, id := range map[int]subnet.LeaseID{1: a, 2: b} {
		if _, err := env.Registry.CreateLease(testContext(t), id, dualAttrs(n, false), longTTL); err != nil {
			t.Fatalf("CreateLease %s: %v", id, err)
		}
	}
	list := mustList(t, env)
	if len(list.Leases) != 2 {
		t.Fatalf("%d leases, want 2 IPv6-only leases: %+v", len(list.Leases), list)
	}
	got, ok := findID(list, a)
	if !ok || got.Subnet.IsValid() || got.Attrs.PublicIP.IsValid() || !sameAttrs(got.Attrs, dualAttrs(1, false)) {
		t.Fatalf("listed %+v (found %v), want IPv6-only %s", got, ok, a)
	}
	mustPutRaw(t, env, subnet.SubnetsDir(env.Prefix)+"0.0.0.0-0&2001:db8:0:1::-64",
		`{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8:ffff::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0a:00:00:00:06:07"}}`)
	if n := len(mustList(t, env).Leases); n != 2 {
		t.Fatalf("a put under flanneld's IPv6-only key made %d leases, want 2 (same key as ours)", n)
	}
	upd := dualAttrs(1, false)
	upd.BackendV6Data = json.RawMessage(`{"VNI":1,"VtepMAC":"0a:00:00:00:06:99"}`)
	if _, err := env.Registry.UpdateLease(testContext(t), subnet.Lease{IPv6Subnet: a.IPv6Subnet, Attrs: upd, Expiration: got.Expiration}, longTTL); err != nil {
		t.Fatalf("UpdateLease %s: %v", a, err)
	}
	if got, _ := findID(mustList(t, env), a); !sameAttrs(got.Attrs, upd) {
		t.Errorf("after update: %+v, want %+v", got.Attrs, upd)
	}
	if err := env.Registry.DeleteLease(testContext(t), a); err != nil {
		t.Fatalf("DeleteLease %s: %v", a, err)
	}
	list = mustList(t, env)
	if _, ok := findID(list, a); ok || len(list.Leases) != 1 {
		t.Errorf("after deleting %s: %+v", a, list.Leases)
	}
}

// testWatchCarriesIPv6Subnet: put and delete events carry the IPv6Subnet.
func testWatchCarriesIPv6Subnet(t *testing.T, env Env) {
	rev := mustList(t, env).Revision
	w := startWatch(t, env, rev)
	dual, only := dualID(3, true), dualID(4, false)
	for n, id := range map[int]subnet.LeaseID{3: dual, 4: only} {
		if _, err := env.Registry.CreateLease(testContext(t), id, dualAttrs(n, n == 3), longTTL); err != nil {
			t.Fatalf("CreateLease %s: %v", id, err)
		}
	}
	if err := env.Registry.DeleteLease(testContext(t), only); err != nil {
		t.Fatalf("DeleteLease %s: %v", only, err)
	}
	c := w.waitUntil(t, "both adds and the removal", func(c collected) bool {
		return hasIDEvent(c.events, subnet.EventAdded, dual) && hasIDEvent(c.events, subnet.EventAdded, only) &&
			hasIDEvent(c.events, subnet.EventRemoved, only)
	})
	for _, e := range c.events {
		if e.Lease.ID() == only && !sameAttrs(e.Lease.Attrs, dualAttrs(4, false)) {
			t.Errorf("%s event of %s: attrs %+v", e.Type, only, e.Lease.Attrs)
		}
	}
}

func hasIDEvent(events []subnet.Event, typ subnet.EventType, id subnet.LeaseID) bool {
	for _, e := range events {
		if e.Type == typ && e.Lease.ID() == id {
			return true
		}
	}
	return false
}
