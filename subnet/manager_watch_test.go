package subnet_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// watching sets up our lease (10.5.1.0/24 via the previous subnet) and two
// peers, starts RunWatch and waits for the first snapshot.
func watching(t *testing.T) (*testEnv, *subnet.Manager, *subnettest.Sink, *runner) {
	t.Helper()
	e := newEnv(t, cfg16)
	e.put(t, "10.5.2.0/24", "192.0.2.2", "02:00:00:00:00:02", t0.Add(time.Hour))
	e.put(t, "10.5.3.0/24", "192.0.2.3", "02:00:00:00:00:03", time.Time{})
	m, l := acquired(t, e, func(o *subnet.ManagerOptions) { o.PreviousSubnet = netip.MustParsePrefix("10.5.1.0/24") })
	wantSubnet(t, l, "10.5.1.0/24")
	sink := subnettest.NewSink()
	r := run(t, func(ctx context.Context) error { return m.RunWatch(ctx, sink) })
	if !sink.WaitFor(wait, func(s *subnettest.Sink) bool { return s.Replaces() == 1 }) {
		t.Fatal("no snapshot")
	}
	eventually(t, "watch", func() bool { return e.reg.Watchers() == 1 })
	return e, m, sink, r
}

// peerSummary renders a peer set as "subnet=ip/mac" sorted, for comparison.
func peerSummary(peers map[subnet.LeaseID]subnet.Lease) string {
	var out []string
	for p, l := range peers {
		name := p.Subnet.String()
		if p.IPv6Subnet.IsValid() {
			name = p.KeyName()
		}
		out = append(out, fmt.Sprintf("%s=%s", name, leaseSummary(l)))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func eventSummary(events []subnet.Event) string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s=%s", e.Type, e.Lease.Subnet, leaseSummary(e.Lease)))
	}
	return strings.Join(out, "; ")
}

func leaseSummary(l subnet.Lease) string {
	if l.Unreadable {
		return "unreadable"
	}
	return fmt.Sprintf("%s/%s", l.Attrs.PublicIP, macOf(l))
}

func macOf(l subnet.Lease) string {
	s := string(l.Attrs.BackendData)
	if i := strings.Index(s, `"VtepMAC":"`); i >= 0 {
		return s[i+11 : i+28]
	}
	return "?"
}

func waitEvents(t *testing.T, sink *subnettest.Sink, want string) {
	t.Helper()
	ok := sink.WaitFor(wait, func(s *subnettest.Sink) bool { return eventSummary(s.Events()) == want })
	if !ok {
		t.Fatalf("events\n got %s\nwant %s", eventSummary(sink.Events()), want)
	}
}

func TestWatchSnapshotAndEvents(t *testing.T) {
	e, _, sink, _ := watching(t)
	want := "10.5.2.0/24=192.0.2.2/02:00:00:00:00:02 10.5.3.0/24=192.0.2.3/02:00:00:00:00:03"
	if got := peerSummary(sink.Peers()); got != want {
		t.Fatalf("snapshot %s, want %s (own lease excluded)", got, want)
	}

	e.put(t, "10.5.4.0/24", "192.0.2.4", "02:00:00:00:00:04", t0.Add(time.Hour))
	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04")

	// An identical re-put (a renewal) is not forwarded; a changed MAC is.
	e.put(t, "10.5.2.0/24", "192.0.2.2", "02:00:00:00:00:02", t0.Add(2*time.Hour))
	e.put(t, "10.5.3.0/24", "192.0.2.3", "02:00:00:00:00:33", time.Time{})
	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04; added 10.5.3.0/24=192.0.2.3/02:00:00:00:00:33")

	// A removal carries the last attributes seen.
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: netip.MustParsePrefix("10.5.3.0/24")}); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04; added 10.5.3.0/24=192.0.2.3/02:00:00:00:00:33; "+
		"removed 10.5.3.0/24=192.0.2.3/02:00:00:00:00:33")

	// Expiry is a removal too.
	e.clock.Advance(3 * time.Hour)
	e.reg.Expire()
	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04; added 10.5.3.0/24=192.0.2.3/02:00:00:00:00:33; "+
		"removed 10.5.3.0/24=192.0.2.3/02:00:00:00:00:33; removed 10.5.2.0/24=192.0.2.2/02:00:00:00:00:02; "+
		"removed 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04")
	if got := peerSummary(sink.Peers()); got != "" {
		t.Errorf("peers left: %s", got)
	}
	e.logs.MustContain(t, `msg="peer added" key=10.5.4.0-24 public_ip=192.0.2.4`, `msg="peer removed" key=10.5.3.0-24 public_ip=192.0.2.3`)
	if v := metricValue(t, e, "overlayd_subnet_peers", nil); v != 0 {
		t.Errorf("peers gauge %v", v)
	}
}

func TestWatchMalformedKeySkipped(t *testing.T) {
	e, _, sink, _ := watching(t)
	e.reg.PutRaw("10.5.9.0-24", `{"PublicIP":"not-an-ip"}`)
	e.reg.PutRaw("garbage", `{}`)
	// The known peer 10.5.2.0/24 gets a malformed value: it stays.
	e.reg.PutRaw("10.5.2.0-24", `{"PublicIP":`)
	e.put(t, "10.5.4.0/24", "192.0.2.4", "02:00:00:00:00:04", time.Time{})
	// An unknown subnet with an unreadable value is announced as such, so
	// that the backend keeps whatever the kernel has for it.
	waitEvents(t, sink, "added 10.5.9.0/24=unreadable; added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04")
	want := "10.5.2.0/24=192.0.2.2/02:00:00:00:00:02 10.5.3.0/24=192.0.2.3/02:00:00:00:00:03 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04 10.5.9.0/24=unreadable"
	if got := peerSummary(sink.Peers()); got != want {
		t.Fatalf("peers %s, want %s", got, want)
	}
	e.logs.MustContain(t, "ignoring malformed lease entry", "key=/coreos.com/network/subnets/10.5.9.0-24",
		"key=/coreos.com/network/subnets/garbage", "key=/coreos.com/network/subnets/10.5.2.0-24")

	// A re-list keeps the peer whose entry became malformed, too.
	e.reg.BreakWatches(errors.New("connection reset"))
	e.clock.AdvanceToNext(wait)
	eventually(t, "re-list", func() bool { return e.reg.Calls(subnettest.OpList) >= 3 && e.reg.Watchers() == 1 })
	if got := peerSummary(sink.Peers()); got != want {
		t.Fatalf("after re-list peers %s, want %s", got, want)
	}
	if n := len(sink.Updates()); n != 1 {
		t.Errorf("%d updates, want only the one addition: %s", n, eventSummary(sink.Events()))
	}
	if n := e.logs.Count("key=/coreos.com/network/subnets/garbage"); n != 1 {
		t.Errorf("malformed key logged %d times, want once", n)
	}
}

func TestWatchHistoryLostDiffs(t *testing.T) {
	e, _, sink, _ := watching(t)
	lists := e.reg.Calls(subnettest.OpList)
	e.reg.HoldWatches(true)
	e.put(t, "10.5.4.0/24", "192.0.2.4", "02:00:00:00:00:04", time.Time{})                                                        // added
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: netip.MustParsePrefix("10.5.3.0/24")}); err != nil { // removed
		t.Fatal(err)
	}
	e.put(t, "10.5.2.0/24", "192.0.2.2", "02:00:00:00:00:02", t0.Add(5*time.Hour)) // unchanged re-put
	e.reg.Compact()
	e.reg.HoldWatches(false)

	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04; removed 10.5.3.0/24=192.0.2.3/02:00:00:00:00:03")
	eventually(t, "re-watch", func() bool { return e.reg.Watchers() == 1 })
	if n := e.reg.Calls(subnettest.OpList) - lists; n != 1 {
		t.Errorf("%d re-lists, want 1", n)
	}
	if sink.Replaces() != 1 || len(sink.Updates()) != 1 {
		t.Errorf("replaces %d, updates %d; want 1 and 1", sink.Replaces(), len(sink.Updates()))
	}
	if e.clock.Pending() != 0 {
		t.Errorf("lost history should re-list at once, not back off")
	}
	e.logs.MustContain(t, "lease watch history lost; re-listing")
	if v := metricValue(t, e, "overlayd_subnet_watch_restarts_total", prometheus.Labels{"reason": "history_lost"}); v != 1 {
		t.Errorf("history_lost restarts %v", v)
	}
	// Unchanged peers of a re-list are not logged again.
	if n := e.logs.Count("key=10.5.2.0-24"); n != 1 {
		t.Errorf("peer 10.5.2.0-24 logged %d times, want once", n)
	}
}

func TestWatchReconnectsWithBackoff(t *testing.T) {
	e, _, sink, _ := watching(t)
	down := errors.New("etcd unreachable")
	e.reg.FailNext(subnettest.OpList, down, down, down)
	e.reg.BreakWatches(errors.New("connection reset"))

	var delays []time.Duration
	for range 4 { // the broken watch, then three failed lists
		step, ok := e.clock.AdvanceToNext(wait)
		if !ok {
			t.Fatalf("no backoff timer after %v", delays)
		}
		delays = append(delays, step)
	}
	eventually(t, "re-watch", func() bool { return e.reg.Watchers() == 1 })
	for i, d := range delays {
		hi := 100 * time.Millisecond << i
		if d < hi/2 || d > hi {
			t.Errorf("backoff %d = %v, want in [%v, %v]", i, d, hi/2, hi)
		}
	}
	e.put(t, "10.5.4.0/24", "192.0.2.4", "02:00:00:00:00:04", time.Time{})
	waitEvents(t, sink, "added 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04")
	if v := metricValue(t, e, "overlayd_subnet_watch_restarts_total", prometheus.Labels{"reason": "error"}); v != 4 {
		t.Errorf("error restarts %v, want 4", v)
	}
	e.logs.MustContain(t, "lease watch failed; reconnecting", "etcd unreachable")
}

func TestWatchBackoffIsCapped(t *testing.T) {
	e, _, _, _ := watching(t)
	down := errors.New("etcd unreachable")
	errs := make([]error, 12)
	for i := range errs {
		errs[i] = down
	}
	e.reg.FailNext(subnettest.OpList, errs...)
	e.reg.BreakWatches(down)
	var last time.Duration
	for range 13 {
		step, ok := e.clock.AdvanceToNext(wait)
		if !ok {
			t.Fatal("no backoff timer")
		}
		last = step
	}
	if last < 5*time.Second || last > 10*time.Second {
		t.Errorf("late backoff %v, want within [5s, 10s]", last)
	}
	eventually(t, "re-watch", func() bool { return e.reg.Watchers() == 1 })
}

func TestWatchOwnLeaseDeletedIsRecreated(t *testing.T) {
	e, m, sink, _ := watching(t)
	own := m.Lease()
	e.clock.Advance(time.Minute)
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: own.Subnet}); err != nil {
		t.Fatal(err)
	}
	want := t0.Add(time.Minute).Add(subnet.DefaultLeaseTTL)
	eventually(t, "re-creation", func() bool { return m.Lease().Expiration.Equal(want) })
	wantStored(t, e, own.Subnet, attrs(ourIP, ourMAC), want)
	e.logs.MustContain(t, "level=WARN", "our lease is gone; re-creating the same subnet", "re-created our lease")
	if len(sink.Updates()) != 0 {
		t.Errorf("own lease leaked to the sink: %s", eventSummary(sink.Events()))
	}
}

func TestWatchOwnLeaseTakenByAnotherNode(t *testing.T) {
	tests := []struct {
		name   string
		action func(t *testing.T, e *testEnv, own netip.Prefix)
	}{
		{"deleted then created by another node", func(t *testing.T, e *testEnv, own netip.Prefix) {
			e.reg.HoldWatches(true)
			if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: own}); err != nil {
				t.Fatal(err)
			}
			e.put(t, own.String(), otherIP, otherMAC, time.Time{})
			e.reg.HoldWatches(false)
		}},
		{"overwritten with another node's value", func(t *testing.T, e *testEnv, own netip.Prefix) {
			e.put(t, own.String(), otherIP, otherMAC, time.Time{})
		}},
		{"taken while the watch was down", func(t *testing.T, e *testEnv, own netip.Prefix) {
			e.reg.HoldWatches(true)
			if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: own}); err != nil {
				t.Fatal(err)
			}
			e.put(t, own.String(), otherIP, otherMAC, time.Time{})
			e.reg.Compact()
			e.reg.HoldWatches(false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, m, _, r := watching(t)
			tt.action(t, e, m.Lease().Subnet)
			if err := r.wait(); !errors.Is(err, subnet.ErrOwnLeaseLost) {
				t.Fatalf("RunWatch returned %v, want ErrOwnLeaseLost", err)
			}
			e.logs.MustContain(t, "level=ERROR")
		})
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	e, _, _, r := watching(t)
	if err := r.stop(); err != nil {
		t.Errorf("RunWatch returned %v on cancel", err)
	}
	if n := e.reg.Watchers(); n != 0 {
		t.Errorf("%d watches left running", n)
	}
}

// TestWatchWarnedKeyForgottenWhenFixed: a malformed entry that reads well
// again is forgotten (the bookkeeping does not grow with churn), so that
// a later breakage of the same key is logged again.
func TestWatchWarnedKeyForgottenWhenFixed(t *testing.T) {
	e, _, sink, _ := watching(t)
	const line = "key=/coreos.com/network/subnets/10.5.9.0-24"
	e.reg.PutRaw("10.5.9.0-24", `{"PublicIP":"not-an-ip"}`)
	waitEvents(t, sink, "added 10.5.9.0/24=unreadable")
	e.put(t, "10.5.9.0/24", "192.0.2.9", "02:00:00:00:00:09", time.Time{})
	waitEvents(t, sink, "added 10.5.9.0/24=unreadable; added 10.5.9.0/24=192.0.2.9/02:00:00:00:00:09")
	e.reg.PutRaw("10.5.9.0-24", `{"PublicIP":"not-an-ip"}`)
	eventually(t, "second warning", func() bool { return e.logs.Count(line) == 2 })
}

// TestStartListsTheLeasesOnce: with the list the daemon read at start (to
// find its previous VTEP MAC) handed over, Acquire and the watch's first
// snapshot list nothing more, and a peer that came and one that went in
// between still end right (the watch replays from the list's revision).
func TestStartListsTheLeasesOnce(t *testing.T) {
	e := newEnv(t, cfg16)
	e.put(t, "10.5.2.0/24", "192.0.2.2", "02:00:00:00:00:02", t0.Add(time.Hour))
	e.put(t, "10.5.3.0/24", "192.0.2.3", "02:00:00:00:00:03", time.Time{})
	start, err := e.reg.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lists := e.reg.Calls(subnettest.OpList)
	m, _ := acquired(t, e, func(o *subnet.ManagerOptions) { o.StartList = &start })
	e.put(t, "10.5.4.0/24", "192.0.2.4", "02:00:00:00:00:04", time.Time{})
	if err := e.reg.DeleteLease(context.Background(), subnet.LeaseID{Subnet: netip.MustParsePrefix("10.5.3.0/24")}); err != nil {
		t.Fatal(err)
	}
	sink := subnettest.NewSink()
	run(t, func(ctx context.Context) error { return m.RunWatch(ctx, sink) })
	want := "10.5.2.0/24=192.0.2.2/02:00:00:00:00:02 10.5.4.0/24=192.0.2.4/02:00:00:00:00:04"
	if !sink.WaitFor(wait, func(s *subnettest.Sink) bool { return peerSummary(s.Peers()) == want }) {
		t.Fatalf("peers %s, want %s", peerSummary(sink.Peers()), want)
	}
	if got := e.reg.Calls(subnettest.OpList) - lists; got != 0 {
		t.Errorf("%d more lease lists after the start list, want 0", got)
	}
}
