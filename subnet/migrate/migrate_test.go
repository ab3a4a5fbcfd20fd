package migrate_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/migrate"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

var start = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	configJSON = `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`
	configKey  = "/coreos.com/network/config"
	// v0.11 values as flanneld wrote them on v2, and their v0.28 forms.
	node1V2 = `{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`
	node1V3 = `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`
	node2V2 = `{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:0a:46:7c:72:f9"}}`
	node2V3 = `{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:0a:46:7c:72:f9"}}`
	node3V2 = `{"PublicIP":"192.0.2.3","BackendType":"vxlan","BackendData":{"VtepMAC":"aa:bb:cc:dd:ee:03"}}`
	node3V3 = `{"PublicIP":"192.0.2.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:03"}}`
	key1    = "/coreos.com/network/subnets/10.244.1.0-24"
	key2    = "/coreos.com/network/subnets/10.244.2.0-24"
	key3    = "/coreos.com/network/subnets/10.244.3.0-24"
)

// source is a fake v2 registry holding the config and three leases: node 1
// expiring in 23h 30m 0.4s, node 2 in 1 s, node 3 a reservation.
func source(t *testing.T, config string) *subnettest.Registry {
	t.Helper()
	reg := subnettest.NewRegistry(subnettest.NewClock(start))
	if config != "" {
		reg.SetConfig([]byte(config))
	}
	putLease(t, reg, "10.244.1.0/24", node1V2, start.Add(23*time.Hour+30*time.Minute+400*time.Millisecond))
	putLease(t, reg, "10.244.2.0/24", node2V2, start.Add(time.Second))
	putLease(t, reg, "10.244.3.0/24", node3V2, time.Time{})
	return reg
}

func putLease(t *testing.T, reg *subnettest.Registry, sn, value string, exp time.Time) {
	t.Helper()
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(value))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutLease(subnet.Lease{Subnet: netip.MustParsePrefix(sn), Attrs: attrs, Expiration: exp}); err != nil {
		t.Fatal(err)
	}
}

func options(o migrate.Options) migrate.Options {
	o.Now = func() time.Time { return start }
	return o
}

// outcomes maps each reported key to its outcome.
func outcomes(r migrate.Report) map[string]migrate.Outcome {
	m := map[string]migrate.Outcome{}
	for _, it := range r.Items {
		m[it.Key] = it.Outcome
	}
	return m
}

func item(t *testing.T, r migrate.Report, key string) migrate.Item {
	t.Helper()
	for _, it := range r.Items {
		if it.Key == key {
			return it
		}
	}
	t.Fatalf("report has no item for %s: %+v", key, r.Items)
	return migrate.Item{}
}

func wantOutcomes(t *testing.T, r migrate.Report, want map[string]migrate.Outcome) {
	t.Helper()
	got := outcomes(r)
	if len(got) != len(want) {
		t.Errorf("report has %d items, want %d: %+v", len(got), len(want), r.Items)
	}
	for key, o := range want {
		if got[key] != o {
			t.Errorf("%s: outcome %v, want %v", key, got[key], o)
		}
	}
}

func TestMigrateCopiesIntoEmptyV3(t *testing.T) {
	dest := newFakeDest()
	report, err := migrate.Migrate(context.Background(), source(t, configJSON), dest, options(migrate.Options{}))
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	wantOutcomes(t, report, map[string]migrate.Outcome{
		configKey: migrate.Copied, key1: migrate.Copied, key2: migrate.Copied, key3: migrate.Copied,
	})
	entries, writes := dest.snapshot()
	want := []fakeWrite{
		{configKey, configJSON, 0},
		{key1, node1V3, 23*time.Hour + 30*time.Minute + time.Second},
		{key2, node2V3, migrate.MinTTL},
		{key3, node3V3, 0},
	}
	if len(writes) != len(want) {
		t.Fatalf("writes = %+v, want %+v", writes, want)
	}
	for i := range want {
		if writes[i] != want[i] {
			t.Errorf("write %d = %+v, want %+v", i, writes[i], want[i])
		}
	}
	if entries[key3].HasLease || !item(t, report, key3).Reservation {
		t.Errorf("reservation migrated with an etcd lease (%+v) or not reported as one", entries[key3])
	}
	if got := item(t, report, key1).TTL; got != want[1].TTL {
		t.Errorf("reported TTL %s, want %s", got, want[1].TTL)
	}
}

func TestMigrateOutcomes(t *testing.T) {
	otherV3 := `{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:09"}}`
	tests := []struct {
		name      string
		opts      migrate.Options
		v3        map[string]string // pre-existing v3 keys
		want      map[string]migrate.Outcome
		wantWrote []string          // keys written
		wantValue map[string]string // v3 values afterwards
		detail    map[string]string // substring of an item's Detail
	}{
		{
			name: "same values are already present",
			// Key order, white space and MAC case differ; VNI and the
			// lease's TTL-ness are not compared.
			v3: map[string]string{
				configKey: `{ "Backend": {"Type":"vxlan"}, "Network": "10.244.0.0/16" }`,
				key1:      `{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VtepMAC":"5A:8E:B7:A6:D8:A1","VNI":7}}`,
				key2:      node2V3, key3: node3V3,
			},
			want: map[string]migrate.Outcome{configKey: migrate.AlreadyPresent, key1: migrate.AlreadyPresent, key2: migrate.AlreadyPresent, key3: migrate.AlreadyPresent},
		},
		{
			name:      "a different lease is a conflict",
			v3:        map[string]string{key2: otherV3},
			want:      map[string]migrate.Outcome{configKey: migrate.Copied, key1: migrate.Copied, key2: migrate.Conflict, key3: migrate.Copied},
			wantWrote: []string{configKey, key1, key3},
			wantValue: map[string]string{key2: otherV3},
			detail:    map[string]string{key2: "v3 holds PublicIP 192.0.2.9"},
		},
		{
			name:      "a value that is not a lease is a conflict",
			v3:        map[string]string{key1: "garbage"},
			want:      map[string]migrate.Outcome{configKey: migrate.Copied, key1: migrate.Conflict, key2: migrate.Copied, key3: migrate.Copied},
			wantWrote: []string{configKey, key2, key3},
			detail:    map[string]string{key1: "not a lease"},
		},
		{
			name:      "a different config is a conflict",
			v3:        map[string]string{configKey: `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`},
			want:      map[string]migrate.Outcome{configKey: migrate.Conflict, key1: migrate.Copied, key2: migrate.Copied, key3: migrate.Copied},
			wantWrote: []string{key1, key2, key3},
			detail:    map[string]string{configKey: "--force"},
		},
		{
			name:      "force overwrites conflicts",
			opts:      migrate.Options{Force: true},
			v3:        map[string]string{key2: otherV3, configKey: `{}`},
			want:      map[string]migrate.Outcome{configKey: migrate.Overwritten, key1: migrate.Copied, key2: migrate.Overwritten, key3: migrate.Copied},
			wantWrote: []string{configKey, key1, key2, key3},
			wantValue: map[string]string{key2: node2V3, configKey: configJSON},
		},
		{
			name:      "dry run writes nothing",
			opts:      migrate.Options{DryRun: true, Force: true},
			v3:        map[string]string{key2: otherV3},
			want:      map[string]migrate.Outcome{configKey: migrate.Copied, key1: migrate.Copied, key2: migrate.Overwritten, key3: migrate.Copied},
			wantValue: map[string]string{key2: otherV3},
		},
		{
			name:      "another prefix",
			opts:      migrate.Options{Prefix: "/other/net"},
			want:      map[string]migrate.Outcome{"/other/net/config": migrate.Copied, "/other/net/subnets/10.244.1.0-24": migrate.Copied, "/other/net/subnets/10.244.2.0-24": migrate.Copied, "/other/net/subnets/10.244.3.0-24": migrate.Copied},
			wantWrote: []string{"/other/net/config", "/other/net/subnets/10.244.1.0-24", "/other/net/subnets/10.244.2.0-24", "/other/net/subnets/10.244.3.0-24"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := newFakeDest()
			for k, v := range tc.v3 {
				dest.set(k, v, 0)
			}
			report, err := migrate.Migrate(context.Background(), source(t, configJSON), dest, options(tc.opts))
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if report.DryRun != tc.opts.DryRun {
				t.Errorf("report DryRun = %v, want %v", report.DryRun, tc.opts.DryRun)
			}
			wantOutcomes(t, report, tc.want)
			entries, writes := dest.snapshot()
			var wrote []string
			for _, w := range writes {
				wrote = append(wrote, w.Key)
			}
			if strings.Join(wrote, " ") != strings.Join(tc.wantWrote, " ") {
				t.Errorf("wrote %v, want %v", wrote, tc.wantWrote)
			}
			for k, v := range tc.wantValue {
				if string(entries[k].Value) != v {
					t.Errorf("v3 %s = %s, want %s", k, entries[k].Value, v)
				}
			}
			for k, sub := range tc.detail {
				if d := item(t, report, k).Detail; !strings.Contains(d, sub) {
					t.Errorf("%s detail %q does not mention %q", k, d, sub)
				}
			}
		})
	}
}

func TestMigrateSkips(t *testing.T) {
	tests := []struct {
		name   string
		config string
		setup  func(t *testing.T, reg *subnettest.Registry)
		key    string
		detail string
	}{
		{"missing config", "", nil, configKey, "no config in the v2 keyspace"},
		{"config not JSON", "{oops", nil, configKey, "not valid JSON"},
		{"malformed v2 value", configJSON, func(t *testing.T, reg *subnettest.Registry) {
			reg.PutRaw("10.244.4.0-24", `{"PublicIP":"bogus"}`)
		}, "/coreos.com/network/subnets/10.244.4.0-24", "malformed in v2"},
		{"malformed v2 key", configJSON, func(t *testing.T, reg *subnettest.Registry) {
			reg.PutRaw("not-a-subnet", node1V2)
		}, "/coreos.com/network/subnets/not-a-subnet", "malformed in v2"},
		{"BackendData not an object", configJSON, func(t *testing.T, reg *subnettest.Registry) {
			putLease(t, reg, "10.244.5.0/24", `{"PublicIP":"192.0.2.5","BackendType":"vxlan","BackendData":"x"}`, time.Time{})
		}, "/coreos.com/network/subnets/10.244.5.0-24", "BackendData"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := source(t, tc.config)
			if tc.setup != nil {
				tc.setup(t, reg)
			}
			dest := newFakeDest()
			report, err := migrate.Migrate(context.Background(), reg, dest, options(migrate.Options{}))
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			it := item(t, report, tc.key)
			if it.Outcome != migrate.Skipped || !strings.Contains(it.Detail, tc.detail) {
				t.Errorf("%s: %v %q, want skipped mentioning %q", tc.key, it.Outcome, it.Detail, tc.detail)
			}
			if entries, _ := dest.snapshot(); entries[key1].ModRevision == 0 {
				t.Errorf("valid lease %s not migrated next to a skipped key", key1)
			}
			if report.Count(migrate.Skipped) != 1 {
				t.Errorf("%d skipped items, want 1: %+v", report.Count(migrate.Skipped), report.Items)
			}
		})
	}
}

func TestMigrateBackendData(t *testing.T) {
	tests := []struct {
		name, config, v2, want string
	}{
		{"VNI from the config", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":4096}}`, node1V2,
			`{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":4096,"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`},
		{"VNI already there is kept", configJSON,
			`{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":3,"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`,
			`{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":3,"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`},
		{"other backends are left alone", `{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}`,
			`{"PublicIP":"192.0.2.1","BackendType":"host-gw"}`,
			`{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"host-gw"}`},
		{"overlayd's private IP is kept", configJSON,
			`{"PublicIP":"203.0.113.1","BackendType":"vxlan","BackendData":{"VtepMAC":"5a:8e:b7:a6:d8:a1"},"OverlaydPrivateIP":"198.51.100.1"}`,
			`{"PublicIP":"203.0.113.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"5a:8e:b7:a6:d8:a1"},"OverlaydPrivateIP":"198.51.100.1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := subnettest.NewRegistry(subnettest.NewClock(start))
			reg.SetConfig([]byte(tc.config))
			putLease(t, reg, "10.244.1.0/24", tc.v2, time.Time{})
			dest := newFakeDest()
			if _, err := migrate.Migrate(context.Background(), reg, dest, options(migrate.Options{})); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if entries, _ := dest.snapshot(); string(entries[key1].Value) != tc.want {
				t.Errorf("v3 value\n got %s\nwant %s", entries[key1].Value, tc.want)
			}
		})
	}
}

func TestMigrateRetriesWhenAKeyChanges(t *testing.T) {
	tests := []struct {
		name     string
		racer    string // what another node writes just before our first put
		want     migrate.Outcome
		wantFrom string // final v3 value
	}{
		{"the same lease appears", node1V3, migrate.AlreadyPresent, node1V3},
		{"another lease appears", `{"PublicIP":"192.0.2.77","BackendType":"vxlan","BackendData":{"VtepMAC":"aa:aa:aa:aa:aa:aa"}}`, migrate.Conflict,
			`{"PublicIP":"192.0.2.77","BackendType":"vxlan","BackendData":{"VtepMAC":"aa:aa:aa:aa:aa:aa"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := newFakeDest()
			raced := false
			dest.beforePut = func(key string) {
				if key == key1 && !raced {
					raced = true
					dest.set(key1, tc.racer, time.Hour)
				}
			}
			report, err := migrate.Migrate(context.Background(), source(t, configJSON), dest, options(migrate.Options{}))
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if got := item(t, report, key1).Outcome; got != tc.want {
				t.Errorf("outcome %v, want %v", got, tc.want)
			}
			if entries, _ := dest.snapshot(); string(entries[key1].Value) != tc.wantFrom {
				t.Errorf("v3 value %s, want %s", entries[key1].Value, tc.wantFrom)
			}
		})
	}
}

func TestMigrateStopsOnErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		setup     func(reg *subnettest.Registry, dest *fakeDest)
		wantError string
		wantItems int
	}{
		{"v2 config unreadable", func(reg *subnettest.Registry, _ *fakeDest) { reg.FailNext(subnettest.OpGetConfig, boom) }, "read v2 config: boom", 0},
		{"v2 list fails", func(reg *subnettest.Registry, _ *fakeDest) { reg.FailNext(subnettest.OpList, boom) }, "list v2 leases: boom", 1},
		{"v3 read fails", func(_ *subnettest.Registry, dest *fakeDest) { dest.getErr = boom }, "read v3 " + configKey + ": boom", 0},
		{"v3 write fails", func(_ *subnettest.Registry, dest *fakeDest) { dest.putErr = boom }, "write v3 " + configKey + ": boom", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, dest := source(t, configJSON), newFakeDest()
			tc.setup(reg, dest)
			report, err := migrate.Migrate(context.Background(), reg, dest, options(migrate.Options{}))
			if !errors.Is(err, boom) || err.Error() != tc.wantError {
				t.Fatalf("Migrate error = %v, want %q wrapping boom", err, tc.wantError)
			}
			if len(report.Items) != tc.wantItems {
				t.Errorf("partial report = %+v, want %d items", report.Items, tc.wantItems)
			}
		})
	}
}

func TestMigrateGivesUpOnAKeyThatKeepsChanging(t *testing.T) {
	dest := newFakeDest()
	dest.beforePut = func(key string) { dest.set(key, node1V3, 0) } // someone writes before each of our puts
	_, err := migrate.Migrate(context.Background(), source(t, configJSON), dest, options(migrate.Options{Force: true}))
	if err == nil || !strings.Contains(err.Error(), "kept changing") {
		t.Fatalf("Migrate = %v, want a kept-changing error", err)
	}
}
