package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func testOptions(k Kernel) Options {
	return Options{
		Kernel: k, Network: netip.MustParsePrefix("10.244.0.0/16"), PodSubnet: netip.MustParsePrefix("10.244.3.1/24"),
		Masquerade: true, ForwardRules: true,
	}
}

func newTestManager(t *testing.T, o Options) *Manager {
	t.Helper()
	m, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	k := newFakeKernel()
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no kernel", func(o *Options) { o.Kernel = nil }},
		{"no network", func(o *Options) { o.Network = netip.Prefix{} }},
		{"subnet of the other family", func(o *Options) { o.Network = netip.MustParsePrefix("2001:db8::/32") }},
		{"subnet outside", func(o *Options) { o.PodSubnet = netip.MustParsePrefix("10.9.0.0/24") }},
		{"negative resync", func(o *Options) { o.Resync = -1 }},
		{"mapped notrack", func(o *Options) { o.VXLANNoTrack = netip.MustParseAddrPort("[::ffff:192.0.2.1]:8472") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(k)
			tc.edit(&o)
			if _, err := NewManager(o); err == nil {
				t.Fatal("NewManager accepted it")
			}
		})
	}
}

// TestEnsureRepairsInOneTransaction: every damage is repaired by exactly one
// batch, and a table in place costs no batch.
func TestEnsureRepairsInOneTransaction(t *testing.T) {
	flannel := Ref{Family: nftables.TableFamilyIPv4, Table: FlannelTable4}
	for _, tc := range []struct {
		name   string
		damage func(*TableState)
	}{
		{"table missing", nil},
		{"rule deleted", func(s *TableState) { c := s.Chains[MasqChain]; c.Rules = c.Rules[1:] }},
		{"rule altered", func(s *TableState) {
			s.Chains[ForwardChain].Rules[0] = Rule{verdict(expr.VerdictDrop)}
		}},
		{"rule added", func(s *TableState) {
			c := s.Chains[MasqChain]
			c.Rules = append([]Rule{{verdict(expr.VerdictAccept)}}, c.Rules...)
		}},
		{"chain deleted", func(s *TableState) { delete(s.Chains, ForwardChain) }},
		{"policy changed", func(s *TableState) { s.Chains[ForwardChain].Base.Policy = nftables.ChainPolicyDrop }},
		{"hook changed", func(s *TableState) { s.Chains[ForwardChain].Base.Priority = 10 }},
		{"stray chain", func(s *TableState) { s.Chains["other"] = &ChainState{Base: filterInput} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel()
			m := newTestManager(t, testOptions(k))
			if err := m.Ensure(); err != nil {
				t.Fatal(err)
			}
			want := cloneTable(k.tables[flannel])
			if tc.damage != nil {
				tc.damage(k.tables[flannel])
			} else {
				delete(k.tables, flannel)
			}
			k.commits = nil
			if err := m.Ensure(); err != nil {
				t.Fatal(err)
			}
			if len(k.commits) != 1 {
				t.Fatalf("%d batches, want 1", len(k.commits))
			}
			assertTable(t, k.tables[flannel], want)
			if s := m.Status(); !s.InPlace || s.Repairs == 0 {
				t.Errorf("status %+v, want in place with a repair", s)
			}
			k.commits = nil
			if err := m.Ensure(); err != nil || len(k.commits) != 0 {
				t.Errorf("in place: err %v, %d batches, want none", err, len(k.commits))
			}
		})
	}
}

func assertTable(t *testing.T, got, want *TableState) {
	t.Helper()
	fam := nftables.TableFamilyIPv4
	if len(got.Chains) != len(want.Chains) {
		t.Fatalf("chains %v, want %v", sortedKeys(got.Chains), sortedKeys(want.Chains))
	}
	for name, w := range want.Chains {
		g := got.Chains[name]
		if g == nil || g.Base != w.Base || !sameRules(Ref{Family: fam}, w.Rules, g.Rules) {
			t.Errorf("chain %s: got %+v, want %+v", name, g, w)
		}
	}
}

// TestTablesFollowOptions: which chains each option asks for, and where.
func TestTablesFollowOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(*Options)
		wantTables map[string][]string
	}{
		{"both", func(*Options) {}, map[string][]string{FlannelTable4: {ForwardChain, MasqChain}}},
		{"masquerade only", func(o *Options) { o.ForwardRules = false }, map[string][]string{FlannelTable4: {MasqChain}}},
		{"notrack only", func(o *Options) {
			o.Masquerade, o.ForwardRules = false, false
			o.VXLANNoTrack = netip.MustParseAddrPort("192.0.2.10:8472")
		}, map[string][]string{OverlaydTable4: {NoTrackChain}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel()
			o := testOptions(k)
			tc.edit(&o)
			if err := newTestManager(t, o).Ensure(); err != nil {
				t.Fatal(err)
			}
			if len(k.tables) != len(tc.wantTables) {
				t.Fatalf("%d tables, want %d", len(k.tables), len(tc.wantTables))
			}
			for name, chains := range tc.wantTables {
				got := k.tables[ref4(name)]
				if got == nil {
					t.Fatalf("no table %s", name)
				}
				if keys := sortedKeys(got.Chains); !equalStrings(keys, chains) {
					t.Errorf("table %s chains %v, want %v", name, keys, chains)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEnsureFailureIsReportedAndRetried: a failed batch changes nothing,
// shows in Status, and the next Ensure repairs.
func TestEnsureFailureIsReportedAndRetried(t *testing.T) {
	k := newFakeKernel()
	m := newTestManager(t, testOptions(k))
	k.fail = errors.New("netlink: operation not permitted")
	if err := m.Ensure(); err == nil {
		t.Fatal("Ensure hid the failure")
	}
	if s := m.Status(); s.InPlace || s.LastError == nil || len(k.tables) != 0 {
		t.Errorf("after a failure: status %+v, %d tables", s, len(k.tables))
	}
	if err := m.Ensure(); err != nil || !m.Status().InPlace {
		t.Errorf("retry: %v, %+v", err, m.Status())
	}
}

// TestMasqRulesFullyRandom: fully-random follows the option, on both
// masquerade rules and nowhere else.
func TestMasqRulesFullyRandom(t *testing.T) {
	n, p := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.244.3.0/24")
	for _, random := range []bool{true, false} {
		count := 0
		for _, r := range MasqRules(n, p, random) {
			for _, e := range r {
				if m, ok := e.(*expr.Masq); ok {
					count++
					if m.FullyRandom != random {
						t.Errorf("random=%t: masq %+v", random, m)
					}
				}
			}
		}
		if count != 2 {
			t.Errorf("random=%t: %d masquerade rules, want 2", random, count)
		}
	}
}

// TestMatchPrefixEncoding: whole-byte prefixes load only their bytes,
// others the whole address with a mask, as nft does.
func TestMatchPrefixEncoding(t *testing.T) {
	for _, tc := range []struct {
		prefix  string
		wantLen uint32
		mask    []byte
	}{
		{"10.244.0.0/16", 2, nil},
		{"10.244.3.0/24", 3, nil},
		{"192.0.2.1/32", 4, nil},
		{"224.0.0.0/4", 4, []byte{0xf0, 0, 0, 0}},
		{"10.244.2.0/23", 4, []byte{0xff, 0xff, 0xfe, 0}},
	} {
		es := ipv4.src(netip.MustParsePrefix(tc.prefix), false)
		if l := es[0].(*expr.Payload).Len; l != tc.wantLen {
			t.Errorf("%s: loads %d bytes, want %d", tc.prefix, l, tc.wantLen)
		}
		b, masked := es[1].(*expr.Bitwise)
		if masked != (tc.mask != nil) || (masked && string(b.Mask) != string(tc.mask)) {
			t.Errorf("%s: exprs %v, want mask %x", tc.prefix, es, tc.mask)
		}
	}
}

// TestFullyRandomFallback: a kernel that rejects fully-random masquerade
// gets plain masquerade, in the same Ensure.
func TestFullyRandomFallback(t *testing.T) {
	k := newFakeKernel()
	k.reject = func(o Op) error {
		if r, ok := o.(AddRule); ok {
			for _, e := range r.Rule {
				if m, ok := e.(*expr.Masq); ok && m.FullyRandom {
					return fmt.Errorf("conn.Receive: %w", syscall.EOPNOTSUPP)
				}
			}
		}
		return nil
	}
	m := newTestManager(t, testOptions(k))
	if err := m.Ensure(); err != nil {
		t.Fatal(err)
	}
	want := MasqRules(netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.244.3.0/24"), false)
	got := k.tables[ref4(FlannelTable4)].Chains[MasqChain].Rules
	if !sameRules(ref4(FlannelTable4), want, got) {
		t.Errorf("postrtg rules are not the plain-masquerade ones")
	}
}
