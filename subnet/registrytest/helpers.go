package registrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// longTTL is the TTL of leases that must not expire during a case.
const longTTL = time.Hour

// waitTimeout bounds every wait for a watch event or an expiry.
const waitTimeout = 15 * time.Second

func testContext(t *testing.T) context.Context { return Context(t, 30*time.Second) }

// attrs returns valid vxlan lease attributes for node n (1..254).
func attrs(n int) subnet.LeaseAttrs {
	return subnet.LeaseAttrs{
		PublicIP:    netip.AddrFrom4([4]byte{192, 0, 2, byte(n)}),
		BackendType: subnet.BackendVXLAN,
		BackendData: json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0a:00:00:00:00:%02x"}`, n)),
	}
}

// leaseSubnet returns 10.244.n.0/24.
func leaseSubnet(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(n), 0}), 24)
}

// leaseID returns the key of the IPv4-only lease 10.244.n.0/24.
func leaseID(n int) subnet.LeaseID { return subnet.LeaseID{Subnet: leaseSubnet(n)} }

func sameAttrs(a, b subnet.LeaseAttrs) bool {
	return a.PublicIP == b.PublicIP && a.PublicIPv6 == b.PublicIPv6 && a.PrivateIP == b.PrivateIP &&
		a.BackendType == b.BackendType &&
		sameJSON(a.BackendData, b.BackendData) && sameJSON(a.BackendV6Data, b.BackendV6Data)
}

func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func mustCreate(t *testing.T, env Env, n int, ttl time.Duration) time.Time {
	t.Helper()
	exp, err := env.Registry.CreateLease(testContext(t), leaseID(n), attrs(n), ttl)
	if err != nil {
		t.Fatalf("CreateLease %s: %v", leaseSubnet(n), err)
	}
	return exp
}

func mustList(t *testing.T, env Env) subnet.LeaseList {
	t.Helper()
	list, err := env.Registry.ListLeases(testContext(t))
	if err != nil {
		t.Fatalf("ListLeases: %v", err)
	}
	return list
}

func mustPutRaw(t *testing.T, env Env, key, value string) {
	t.Helper()
	if err := env.PutRaw(key, value); err != nil {
		t.Fatalf("PutRaw %s: %v", key, err)
	}
}

func findLease(list subnet.LeaseList, sn netip.Prefix) (subnet.Lease, bool) {
	for _, l := range list.Leases {
		if l.Subnet == sn {
			return l, true
		}
	}
	return subnet.Lease{}, false
}

// checkExpiration checks exp is ttl after a moment within [before, after],
// with a second of slack for TTLs counted in whole seconds.
func checkExpiration(t *testing.T, what string, exp, before, after time.Time, ttl time.Duration) {
	t.Helper()
	low, high := before.Add(ttl-time.Second), after.Add(ttl+time.Second)
	if exp.Before(low) || exp.After(high) {
		t.Errorf("%s expiration = %s, want between %s and %s", what, exp, low, high)
	}
}

// watcher runs WatchLeases in the background and collects its batches.
type watcher struct {
	batches chan subnet.WatchBatch
	done    chan error
	cancel  context.CancelFunc
}

func startWatch(t *testing.T, env Env, fromRevision int64) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{batches: make(chan subnet.WatchBatch, 64), done: make(chan error, 1), cancel: cancel}
	go func() { w.done <- env.Registry.WatchLeases(ctx, fromRevision, w.batches) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(waitTimeout):
			t.Errorf("WatchLeases did not return %s after its context ended", waitTimeout)
		}
	})
	return w
}

// collected is everything a watch delivered so far.
type collected struct {
	events  []subnet.Event
	skipped []subnet.SkippedKey
	lastRev int64
}

// waitUntil reads batches until done(c) holds, failing after waitTimeout
// or when the watch ends.
func (w *watcher) waitUntil(t *testing.T, what string, done func(c collected) bool) collected {
	t.Helper()
	var c collected
	deadline := time.After(waitTimeout)
	for !done(c) {
		select {
		case b := <-w.batches:
			if b.Revision < c.lastRev {
				t.Errorf("batch revision went back from %d to %d", c.lastRev, b.Revision)
			}
			c.events = append(c.events, b.Events...)
			c.skipped = append(c.skipped, b.Skipped...)
			c.lastRev = b.Revision
		case err := <-w.done:
			t.Fatalf("waiting for %s: WatchLeases returned early: %v", what, err)
		case <-deadline:
			t.Fatalf("waiting for %s: not seen after %s; got events %+v, skipped %+v", what, waitTimeout, c.events, c.skipped)
		}
	}
	return c
}

func hasEvent(events []subnet.Event, typ subnet.EventType, sn netip.Prefix) (subnet.Event, bool) {
	for _, e := range events {
		if e.Type == typ && e.Lease.Subnet == sn {
			return e, true
		}
	}
	return subnet.Event{}, false
}

func hasSkipped(skipped []subnet.SkippedKey, key string) bool {
	for _, s := range skipped {
		if s.Key == key {
			return s.Reason != nil
		}
	}
	return false
}
