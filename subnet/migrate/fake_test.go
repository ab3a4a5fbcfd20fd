package migrate_test

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet/migrate"
)

// fakeWrite is one successful Put.
type fakeWrite struct {
	Key   string
	Value string
	TTL   time.Duration
}

// fakeDest is an in-memory migrate.Destination with etcd's revision
// semantics, fault injection and a hook to change a key behind a Put.
type fakeDest struct {
	mu      sync.Mutex
	rev     int64
	entries map[string]migrate.Entry
	ttls    map[string]time.Duration
	writes  []fakeWrite
	getErr  error
	putErr  error
	// beforePut runs (without the lock) before the comparison of each Put.
	beforePut func(key string)
}

func newFakeDest() *fakeDest {
	return &fakeDest{entries: map[string]migrate.Entry{}, ttls: map[string]time.Duration{}}
}

// set writes a key as another writer would.
func (d *fakeDest) set(key, value string, ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rev++
	d.entries[key] = migrate.Entry{Value: []byte(value), ModRevision: d.rev, HasLease: ttl > 0}
	d.ttls[key] = ttl
}

func (d *fakeDest) Get(_ context.Context, key string) (migrate.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.getErr != nil {
		return migrate.Entry{}, d.getErr
	}
	return d.entries[key], nil
}

func (d *fakeDest) Put(_ context.Context, key string, value []byte, ttl time.Duration, ifModRevision int64) error {
	if d.beforePut != nil {
		d.beforePut(key)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.putErr != nil {
		return d.putErr
	}
	if d.entries[key].ModRevision != ifModRevision {
		return migrate.ErrChanged
	}
	d.rev++
	d.entries[key] = migrate.Entry{Value: value, ModRevision: d.rev, HasLease: ttl > 0}
	d.ttls[key] = ttl
	d.writes = append(d.writes, fakeWrite{Key: key, Value: string(value), TTL: ttl})
	return nil
}

func (d *fakeDest) snapshot() (map[string]migrate.Entry, []fakeWrite) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.entries), append([]fakeWrite(nil), d.writes...)
}
