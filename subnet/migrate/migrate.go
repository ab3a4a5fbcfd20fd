package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// MinTTL is etcd's smallest lease TTL with its default election timeout
// (1.5 election timeouts, rounded up to whole seconds). A lease about to
// expire in v2 is copied with at least this TTL.
const MinTTL = 2 * time.Second

// ErrChanged is what Destination.Put returns when the key's revision is no
// longer the one given.
var ErrChanged = errors.New("key changed since it was read")

// Entry is a v3 key as read: ModRevision 0 means it does not exist.
type Entry struct {
	Value       []byte
	ModRevision int64
	HasLease    bool
}

// Exists reports whether the key was there.
func (e Entry) Exists() bool { return e.ModRevision != 0 }

// Destination is the v3 keyspace (EtcdV3 on a real etcd).
type Destination interface {
	// Get reads a key; a missing key is a zero Entry, not an error.
	Get(ctx context.Context, key string) (Entry, error)
	// Put writes value at key if the key's ModRevision is still
	// ifModRevision (0: the key must not exist), otherwise ErrChanged.
	// With ttl > 0 the key is attached to a new etcd lease of ttl (rounded
	// up to whole seconds); with 0 it gets no lease.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration, ifModRevision int64) error
}

// Options tune Migrate.
type Options struct {
	// Prefix is the destination's flannel prefix; subnet.DefaultPrefix
	// when empty.
	Prefix string
	// DryRun reports what would happen and writes nothing.
	DryRun bool
	// Force overwrites conflicting v3 keys instead of reporting them.
	Force bool
	// Logger receives one line per key; nil discards.
	Logger *slog.Logger
	// Now is the clock for remaining TTLs; time.Now when nil.
	Now func() time.Time
}

// putAttempts bounds the retries when a v3 key changes between reading
// and writing it.
const putAttempts = 3

type migration struct {
	to     Destination
	opts   Options
	report Report
}

// Migrate copies the config and leases of from (a v2 registry) to to. It
// stops at the first read or write error and returns the report so far
// with it. Conflicts are not errors: see Report.Count(Conflict).
func Migrate(ctx context.Context, from subnet.Registry, to Destination, opts Options) (Report, error) {
	opts = withDefaults(opts)
	m := &migration{to: to, opts: opts, report: Report{DryRun: opts.DryRun}}
	vni, err := m.migrateConfig(ctx, from)
	if err != nil {
		return m.report, err
	}
	err = m.migrateLeases(ctx, from, vni)
	return m.report, err
}

func withDefaults(o Options) Options {
	if o.Prefix == "" {
		o.Prefix = subnet.DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// migrateConfig copies the config and returns its VNI (defaultVNI when
// the config is missing or unreadable).
func (m *migration) migrateConfig(ctx context.Context, from subnet.Registry) (int, error) {
	key := subnet.ConfigKey(m.opts.Prefix)
	config, err := from.GetNetworkConfig(ctx)
	if errors.Is(err, subnet.ErrConfigNotFound) {
		m.add(Item{Key: key, Outcome: Skipped, Detail: "no config in the v2 keyspace"})
		return defaultVNI, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read v2 config: %w", err)
	}
	vni, err := configVNI(config)
	if err != nil {
		m.add(Item{Key: key, Outcome: Skipped, Detail: err.Error()})
		return defaultVNI, nil
	}
	same := func(existing []byte) string {
		if sameJSON(existing, config) {
			return ""
		}
		return "v3 holds a different config"
	}
	item, err := m.migrateKey(ctx, Item{Key: key}, config, same)
	if err != nil {
		return 0, err
	}
	m.add(item)
	return vni, nil
}

func (m *migration) migrateLeases(ctx context.Context, from subnet.Registry, vni int) error {
	list, err := from.ListLeases(ctx)
	if err != nil {
		return fmt.Errorf("list v2 leases: %w", err)
	}
	leases := slices.Clone(list.Leases)
	slices.SortFunc(leases, func(a, b subnet.Lease) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	for _, lease := range leases {
		if err := m.migrateLease(ctx, lease, vni); err != nil {
			return err
		}
	}
	for _, skipped := range list.Skipped {
		m.add(Item{Key: skipped.Key, Outcome: Skipped, Detail: fmt.Sprintf("malformed in v2: %v", skipped.Reason)})
	}
	return nil
}

func (m *migration) migrateLease(ctx context.Context, lease subnet.Lease, vni int) error {
	key := subnet.LeaseKey(m.opts.Prefix, lease.Subnet)
	value, err := v3LeaseValue(lease.Attrs, vni)
	if err != nil {
		m.add(Item{Key: key, Outcome: Skipped, Detail: fmt.Sprintf("cannot re-encode: %v", err)})
		return nil
	}
	want := Item{Key: key, Reservation: lease.IsReservation(), TTL: m.remainingTTL(lease)}
	item, err := m.migrateKey(ctx, want, value, func(existing []byte) string { return leaseMatch(existing, lease.Attrs) })
	if err != nil {
		return err
	}
	m.add(item)
	return nil
}

// remainingTTL is the lease's remaining v2 TTL rounded up to whole
// seconds, at least MinTTL; zero for a reservation.
func (m *migration) remainingTTL(lease subnet.Lease) time.Duration {
	if lease.IsReservation() {
		return 0
	}
	remaining := lease.Expiration.Sub(m.opts.Now())
	return max((remaining + time.Second - 1).Truncate(time.Second), MinTTL)
}

// migrateKey decides what to do with one v3 key and does it: differs
// returns "" when the existing value is the same as ours, else why not.
func (m *migration) migrateKey(ctx context.Context, item Item, value []byte, differs func(existing []byte) string) (Item, error) {
	for range putAttempts {
		current, err := m.to.Get(ctx, item.Key)
		if err != nil {
			return Item{}, fmt.Errorf("read v3 %s: %w", item.Key, err)
		}
		item.Outcome, item.Detail = m.decide(current, differs)
		if item.Outcome == AlreadyPresent || item.Outcome == Conflict || m.opts.DryRun {
			return item, nil
		}
		err = m.to.Put(ctx, item.Key, value, item.TTL, current.ModRevision)
		if errors.Is(err, ErrChanged) {
			continue
		}
		if err != nil {
			return Item{}, fmt.Errorf("write v3 %s: %w", item.Key, err)
		}
		return item, nil
	}
	return Item{}, fmt.Errorf("write v3 %s: it kept changing during %d attempts", item.Key, putAttempts)
}

func (m *migration) decide(current Entry, differs func(existing []byte) string) (Outcome, string) {
	if !current.Exists() {
		return Copied, ""
	}
	why := differs(current.Value)
	switch {
	case why == "":
		return AlreadyPresent, ""
	case m.opts.Force:
		return Overwritten, why
	}
	return Conflict, why + ": use --force to overwrite"
}

func (m *migration) add(item Item) {
	m.report.Items = append(m.report.Items, item)
	m.opts.Logger.Info("migrate key", "key", item.Key, "result", item.Outcome.label(m.opts.DryRun),
		"ttl", item.TTL, "reservation", item.Reservation, "detail", item.Detail)
}
