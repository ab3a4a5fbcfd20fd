package registrytest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Closer is a registry the suite opens per test and closes after it.
type Closer interface {
	subnet.Registry
	Close() error
}

// Fixture is a registry on its own prefix of a shared server, plus a raw
// client (of type Raw) to look behind its back.
type Fixture[R Closer, Raw any] struct {
	Reg    R
	Raw    Raw
	Prefix string
}

// Key is the full key of sn's lease under the fixture's prefix.
func (f Fixture[R, Raw]) Key(sn netip.Prefix) string { return subnet.LeaseKey(f.Prefix, sn) }

// Impl is how the suite opens an implementation and reaches behind it.
type Impl[R Closer, Raw any] struct {
	// Open opens the registry under test on prefix.
	Open func(ctx context.Context, prefix string) (R, error)
	// Raw is the raw client shared by every fixture.
	Raw Raw
	// PutRaw and LoseHistory are Env's, on the raw client.
	PutRaw      func(ctx context.Context, raw Raw, key, value string) error
	LoseHistory func(ctx context.Context, raw Raw) error
	// Timeout bounds each raw call.
	Timeout time.Duration
	// IPv6 runs IPv6Cases too (a store that holds IPv6 leases).
	IPv6 bool
}

// Test is one implementation-specific check on a fixture.
type Test[R Closer, Raw any] struct {
	Name string
	Run  func(t *testing.T, f Fixture[R, Raw])
}

// Suite runs, on one shared server, the conformance cases and then tests,
// each on a fresh prefix and one after another (history loss is
// server-wide).
func Suite[R Closer, Raw any](t *testing.T, impl Impl[R, Raw], tests []Test[R, Raw]) {
	t.Helper()
	var seq atomic.Int64
	fresh := func(t *testing.T) Fixture[R, Raw] {
		prefix := fmt.Sprintf("/overlayd-test/%d", seq.Add(1))
		reg, err := impl.Open(context.Background(), prefix)
		if err != nil {
			t.Fatalf("open registry on %s: %v", prefix, err)
		}
		t.Cleanup(func() { reg.Close() })
		return Fixture[R, Raw]{Reg: reg, Raw: impl.Raw, Prefix: prefix}
	}
	newEnv := func(t *testing.T) Env {
		f := fresh(t)
		return Env{
			Registry: f.Reg,
			Prefix:   f.Prefix,
			PutRaw: func(key, value string) error {
				return impl.PutRaw(Context(t, impl.Timeout), impl.Raw, key, value)
			},
			LoseHistory: func() error { return impl.LoseHistory(Context(t, impl.Timeout), impl.Raw) },
		}
	}
	t.Run("Conformance", func(t *testing.T) { Run(t, newEnv) })
	if impl.IPv6 {
		t.Run("IPv6", func(t *testing.T) { RunIPv6(t, newEnv) })
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) { tc.Run(t, fresh(t)) })
	}
}

// Context is a context for one step of a test, bounded by d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Attrs decodes lease attributes as another writer (flanneld) stored them.
func Attrs(t testing.TB, value string) subnet.LeaseAttrs {
	t.Helper()
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(value))
	if err != nil {
		t.Fatalf("decode %s: %v", value, err)
	}
	return attrs
}

// ListBySubnet lists the leases of reg, fails unless there are exactly
// want of them and none skipped, and returns them by subnet.
func ListBySubnet(t testing.TB, ctx context.Context, reg subnet.Registry, want int) map[netip.Prefix]subnet.Lease {
	t.Helper()
	list, err := reg.ListLeases(ctx)
	if err != nil || len(list.Leases) != want || len(list.Skipped) != 0 {
		t.Fatalf("ListLeases = %+v, %v; want %d leases", list, err, want)
	}
	bySubnet := map[netip.Prefix]subnet.Lease{}
	for _, l := range list.Leases {
		bySubnet[l.Subnet] = l
	}
	return bySubnet
}

// ErrorText is an error a test provoked and the exact text it must have.
type ErrorText struct {
	Name string
	Err  error
	Want string
}

// CheckErrorTexts reports every error whose text is not the one wanted.
func CheckErrorTexts(t testing.TB, cases []ErrorText) {
	t.Helper()
	for _, tc := range cases {
		if tc.Err == nil || tc.Err.Error() != tc.Want {
			t.Errorf("%s: err = %v, want %q", tc.Name, tc.Err, tc.Want)
		}
	}
}

// CheckMentions fails if err does not match wantInError: nil wants no
// error, otherwise an error mentioning every string of it.
func CheckMentions(t testing.TB, err error, wantInError []string) {
	t.Helper()
	if wantInError == nil {
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("round trip succeeded, want an error")
	}
	for _, want := range wantInError {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// RoundTrip opens a registry with open, asks it for the (missing) network
// config within timeout and closes it: ErrConfigNotFound proves the request
// went through, so it returns nil then.
func RoundTrip[R Closer](open func(context.Context) (R, error), timeout time.Duration) error {
	reg, err := open(context.Background())
	if err != nil {
		return err
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = reg.GetNetworkConfig(ctx)
	if errors.Is(err, subnet.ErrConfigNotFound) {
		return nil
	}
	if err == nil {
		return errors.New("GetNetworkConfig found a config in an empty keyspace")
	}
	return err
}

// FirstBatch watches reg from revision from and returns the first batch;
// it fails the test, saying what was awaited, if none comes within timeout.
func FirstBatch(t testing.TB, reg subnet.Registry, from int64, timeout time.Duration, what string) subnet.WatchBatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make(chan subnet.WatchBatch, 1)
	go reg.WatchLeases(ctx, from, out)
	select {
	case batch := <-out:
		return batch
	case <-ctx.Done():
		t.Fatalf("%s: no watch batch within %s", what, timeout)
		return subnet.WatchBatch{}
	}
}

// CheckErrorsNameTheSubnet checks the texts of the errors reg (API api,
// "v2" or "v3", on prefix) returns for a missing lease of sn, a zero TTL
// and a missing config, and with deleteMissing for the deletion of a
// missing lease: each names the operation and the key.
func CheckErrorsNameTheSubnet(t testing.TB, reg subnet.Registry, api, prefix string, sn netip.Prefix, attrs subnet.LeaseAttrs, deleteMissing bool) {
	t.Helper()
	ctx := Context(t, 30*time.Second)
	_, updateErr := reg.UpdateLease(ctx, subnet.Lease{Subnet: sn, Attrs: attrs}, time.Hour)
	_, badTTLErr := reg.CreateLease(ctx, subnet.LeaseID{Subnet: sn}, attrs, 0)
	_, configErr := reg.GetNetworkConfig(ctx)
	cases := []ErrorText{
		{Name: "update missing", Err: updateErr, Want: "etcd " + api + " update lease " + sn.String() + ": lease not found"},
		{Name: "create with zero TTL", Err: badTTLErr, Want: "etcd " + api + " create lease " + sn.String() + ": TTL 0s: must be positive"},
		{Name: "config missing", Err: configErr, Want: "etcd " + api + " get " + prefix + "/config: network config not found"},
	}
	if deleteMissing {
		cases = append(cases, ErrorText{Name: "delete missing", Err: reg.DeleteLease(ctx, subnet.LeaseID{Subnet: sn}), Want: "etcd " + api + " delete lease " + sn.String() + ": lease not found"})
	}
	CheckErrorTexts(t, cases)
}
