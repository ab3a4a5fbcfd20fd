package iptables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

func testOptions(r Runner) Options {
	return Options{
		Runner: r, Network: testNetwork, PodSubnet: testSubnet,
		Masquerade: true, ForwardRules: true,
	}
}

func newTestManager(t *testing.T, o Options) *Manager {
	t.Helper()
	m, err := NewManager(o)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func ensure(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Ensure(); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func assertTables(t *testing.T, f *fakeRunner, nat, filter string) {
	t.Helper()
	if got := f.save("nat"); got != nat {
		t.Errorf("iptables -t nat -S\n got:\n%s\nwant:\n%s", got, nat)
	}
	if got := f.save("filter"); got != filter {
		t.Errorf("iptables -S\n got:\n%s\nwant:\n%s", got, filter)
	}
}

func TestEnsureOnFreshNodeMatchesFlannel(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	m := newTestManager(t, testOptions(f))
	ensure(t, m)
	assertTables(t, f, observedNAT, observedFilter)
	st := m.Status()
	if !st.InPlace || st.LastError != nil || st.Repairs != 4 || st.LastCheck.IsZero() {
		t.Fatalf("status after first Ensure = %+v, want in place with 4 chains repaired", st)
	}
}

func TestEnsureMakesNoWritesWhenInPlace(t *testing.T) {
	tests := []struct {
		name string
		prep func(t *testing.T, f *fakeRunner)
	}{
		{"after our own Ensure", func(t *testing.T, f *fakeRunner) {
			ensure(t, newTestManager(t, testOptions(f)))
		}},
		{"rules left by flanneld v0.28", func(t *testing.T, f *fakeRunner) {
			f.seed(t, "nat", observedNAT)
			f.seed(t, "filter", observedFilter)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			tt.prep(t, f)
			f.writes = 0
			m := newTestManager(t, testOptions(f))
			ensure(t, m)
			if f.writes != 0 {
				t.Fatalf("Ensure on rules in place made %d writes, want 0", f.writes)
			}
			if st := m.Status(); st.Repairs != 0 || !st.InPlace {
				t.Fatalf("status = %+v, want in place, no repairs", st)
			}
			assertTables(t, f, observedNAT, observedFilter)
		})
	}
}

func TestEnsureRepairs(t *testing.T) {
	masq := func(f *fakeRunner) *fakeChain { return f.chain("nat", MasqChain) }
	tests := []struct {
		name       string
		damage     func(t *testing.T, f *fakeRunner)
		wantWrites int
	}{
		{"deleted rule", func(t *testing.T, f *fakeRunner) {
			must(t, f.DeleteById("nat", MasqChain, 3))
		}, 1},
		{"deleted first rule", func(t *testing.T, f *fakeRunner) {
			must(t, f.DeleteById("nat", MasqChain, 1))
		}, 1},
		{"deleted last forward rule", func(t *testing.T, f *fakeRunner) {
			must(t, f.DeleteById("filter", ForwardChain, 2))
		}, 1},
		{"missing jump", func(t *testing.T, f *fakeRunner) {
			must(t, f.Delete("nat", postroutingChain, masqJump().Spec...))
		}, 1},
		{"duplicate jump", func(t *testing.T, f *fakeRunner) {
			must(t, f.Append("filter", forwardChain, forwardJump().Spec...))
		}, 1},
		{"swapped rules", func(t *testing.T, f *fakeRunner) {
			c := masq(f)
			c.rules[1], c.rules[2] = c.rules[2], c.rules[1]
		}, 2},
		{"masquerade before returns", func(t *testing.T, f *fakeRunner) {
			c := masq(f)
			c.rules = append(c.rules[4:], c.rules[:4]...)
		}, 8},
		{"stray rule in our chain", func(t *testing.T, f *fakeRunner) {
			must(t, f.Insert("nat", MasqChain, 2, "-s", "192.0.2.0/24", "-j", "RETURN"))
		}, 1},
		{"stray rule at the end", func(t *testing.T, f *fakeRunner) {
			must(t, f.Append("nat", MasqChain, "-j", "RETURN"))
		}, 1},
		{"chain flushed", func(t *testing.T, f *fakeRunner) {
			must(t, f.ClearChain("filter", ForwardChain))
		}, 2},
		{"chain and jump deleted", func(t *testing.T, f *fakeRunner) {
			must(t, f.Delete("nat", postroutingChain, masqJump().Spec...))
			must(t, f.ClearChain("nat", MasqChain))
			must(t, f.DeleteChain("nat", MasqChain))
		}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			m := newTestManager(t, testOptions(f))
			ensure(t, m)
			tt.damage(t, f)
			f.writes = 0
			before := m.Status().Repairs
			ensure(t, m)
			assertTables(t, f, observedNAT, observedFilter)
			if f.writes != tt.wantWrites {
				t.Errorf("repair took %d writes, want %d", f.writes, tt.wantWrites)
			}
			if m.Status().Repairs <= before {
				t.Errorf("Status.Repairs did not grow: %d", m.Status().Repairs)
			}
		})
	}
}

func TestEnsureRemovesPreviousNetworkRules(t *testing.T) {
	prevNet, prevSub := netip.MustParsePrefix("10.5.0.0/16"), netip.MustParsePrefix("10.5.34.0/24")
	old := strings.NewReplacer("10.244.0.0/16", prevNet.String(), "10.244.99.0/24", prevSub.String())
	f := newFakeRunner(goipt.ProtocolIPv4)
	f.seed(t, "nat", old.Replace(observedNAT))
	f.seed(t, "filter", old.Replace(observedFilter))
	o := testOptions(f)
	o.PrevNetwork, o.PrevSubnet = prevNet, netip.MustParsePrefix("10.5.34.1/24")
	ensure(t, newTestManager(t, o))
	assertTables(t, f, observedNAT, observedFilter)
}

func TestEnsureRemovesFlannelV011Rules(t *testing.T) {
	const foreignNAT = "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"
	const foreignFilter = "-A FORWARD -i docker0 -j ACCEPT"
	prevNet, prevSub := netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("10.9.3.0/24")
	prev := strings.NewReplacer("10.244.0.0/16", prevNet.String(), "10.244.15.0/24", prevSub.String(), " --random-fully", "")
	cur := strings.NewReplacer("10.244.15.0/24", testSubnet.String())
	tests := []struct {
		name         string
		nat, filter  string
		prevNet, sub netip.Prefix
	}{
		{"v0.11 on the same network, previous subnet", observedV011NAT, observedV011Forward,
			testNetwork, netip.MustParsePrefix("10.244.15.0/24")},
		{"v0.11 rules for the current subnet", cur.Replace(observedV011NAT), observedV011Forward,
			netip.Prefix{}, netip.Prefix{}},
		{"v0.11 without random-fully on a previous network", prev.Replace(observedV011NAT), prev.Replace(observedV011Forward),
			prevNet, prevSub},
		{"v0.11 rules written twice", observedV011NAT + "\n" + observedV011NAT, observedV011Forward + "\n" + observedV011Forward,
			testNetwork, netip.MustParsePrefix("10.244.15.0/24")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			f.seed(t, "nat", foreignNAT+"\n"+tt.nat)
			f.seed(t, "filter", tt.filter+"\n"+foreignFilter)
			o := testOptions(f)
			o.PrevNetwork, o.PrevSubnet = tt.prevNet, tt.sub
			ensure(t, newTestManager(t, o))
			wantNAT := strings.Replace(observedNAT, "-A POSTROUTING", foreignNAT+"\n-A POSTROUTING", 1)
			wantFilter := strings.Replace(observedFilter, "-A FORWARD", foreignFilter+"\n-A FORWARD", 1)
			assertTables(t, f, wantNAT, wantFilter)
		})
	}
}

func TestRandomFully(t *testing.T) {
	tests := []struct {
		name               string
		supported, disable bool
		want               bool
	}{
		{"supported", true, false, true},
		{"unsupported", false, false, false},
		{"disabled", true, true, false},
		{"unsupported and disabled", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			f.randomFully = tt.supported
			o := testOptions(f)
			o.RandomFullyDisabled = tt.disable
			ensure(t, newTestManager(t, o))
			want := observedNAT
			if !tt.want {
				want = strings.ReplaceAll(observedNAT, " --random-fully", "")
			}
			assertTables(t, f, want, observedFilter)
		})
	}
}

func TestEnsureOnlyManagesWhatIsAskedFor(t *testing.T) {
	empty := newFakeRunner(goipt.ProtocolIPv4)
	tests := []struct {
		name        string
		masq, fwd   bool
		nat, filter string
	}{
		{"masquerade only", true, false, observedNAT, empty.save("filter")},
		{"forward only", false, true, empty.save("nat"), observedFilter},
		{"neither", false, false, empty.save("nat"), empty.save("filter")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			o := testOptions(f)
			o.Masquerade, o.ForwardRules = tt.masq, tt.fwd
			ensure(t, newTestManager(t, o))
			assertTables(t, f, tt.nat, tt.filter)
		})
	}
}

func TestEnsureIPv6(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv6)
	f.randomFully = false
	o := Options{
		Runner: f, Masquerade: true, ForwardRules: true,
		Network: netip.MustParsePrefix("fd00:10::/48"), PodSubnet: netip.MustParsePrefix("fd00:10:0:5::/64"),
	}
	ensure(t, newTestManager(t, o))
	want := `-A FLANNEL-POSTRTG -s fd00:10::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE`
	if !strings.Contains(f.save("nat"), want+"\n") {
		t.Fatalf("ip6tables -t nat -S lacks %q:\n%s", want, f.save("nat"))
	}
}

func TestEnsureReportsFailuresAndRecovers(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	reg := prometheus.NewRegistry()
	o := testOptions(f)
	o.Registerer = reg
	m := newTestManager(t, o)
	injected := errors.New("xtables lock held")
	f.fail["Insert"] = injected
	err := m.Ensure()
	if !errors.Is(err, injected) {
		t.Fatalf("Ensure error = %v, want it to wrap %v", err, injected)
	}
	if !strings.Contains(err.Error(), MasqChain) || !strings.Contains(err.Error(), ForwardChain) {
		t.Errorf("error %q should name both chains that failed", err)
	}
	if st := m.Status(); st.InPlace || !errors.Is(st.LastError, injected) {
		t.Fatalf("status after failure = %+v", st)
	}
	delete(f.fail, "Insert")
	ensure(t, m)
	assertTables(t, f, observedNAT, observedFilter)
	if st := m.Status(); !st.InPlace || st.LastError != nil {
		t.Fatalf("status after recovery = %+v", st)
	}
	want := map[string]float64{
		"overlayd_iptables_errors_total":                                       1,
		"overlayd_iptables_resyncs_total":                                      2,
		`overlayd_iptables_repairs_total{chain="FLANNEL-FWD",table="filter"}`:  2,
		`overlayd_iptables_repairs_total{chain="FLANNEL-POSTRTG",table="nat"}`: 2,
		`overlayd_iptables_repairs_total{chain="FORWARD",table="filter"}`:      1,
		`overlayd_iptables_repairs_total{chain="POSTROUTING",table="nat"}`:     1,
	}
	assertMetrics(t, reg, want)
}

func TestTwoManagersShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	o4 := testOptions(newFakeRunner(goipt.ProtocolIPv4))
	o4.Registerer = reg
	o6 := Options{Runner: newFakeRunner(goipt.ProtocolIPv6), ForwardRules: true, Network: netip.MustParsePrefix("fd00::/48"), Registerer: reg}
	newTestManager(t, o4)
	newTestManager(t, o6)
}

func TestRunResyncsUntilCancelled(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	o := testOptions(f)
	o.Resync = time.Millisecond
	m := newTestManager(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	labtest.Eventually(t, 10*time.Second, "rules in place", func() error {
		if !m.Status().InPlace {
			return fmt.Errorf("status %+v", m.Status())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	assertTables(t, f, observedNAT, observedFilter)
}

func TestRunRepairsDamageOnNextTick(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	locked := &lockedRunner{r: f}
	o := testOptions(locked)
	o.Resync = time.Minute
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	o.Clock = clock
	m := newTestManager(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The first check runs at once, then Run waits a Resync for the next.
	if !clock.WaitForTimers(1, 10*time.Second) {
		t.Fatal("Run did not wait for the next check")
	}
	if !m.Status().InPlace {
		t.Fatalf("first check: %+v", m.Status())
	}
	repairs := m.Status().Repairs
	locked.do(func() { must(t, f.DeleteById("nat", MasqChain, 2)) })
	if m.Status().Repairs != repairs {
		t.Fatal("repaired before the next tick")
	}
	if step, ok := clock.AdvanceToNext(10 * time.Second); !ok || step != time.Minute {
		t.Fatalf("next check after %v (%v), want 1m", step, ok)
	}
	labtest.Eventually(t, 10*time.Second, "a repair", func() error {
		if m.Status().Repairs <= repairs {
			return fmt.Errorf("status %+v", m.Status())
		}
		return nil
	})
	if got := m.Status().LastCheck; !got.Equal(clock.Now()) {
		t.Errorf("LastCheck %v, want the clock's %v", got, clock.Now())
	}
	locked.do(func() { assertTables(t, f, observedNAT, observedFilter) })
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	tests := []struct {
		name    string
		change  func(o *Options)
		wantErr string
	}{
		{"no runner", func(o *Options) { o.Runner = nil }, "Options.Runner"},
		{"no network", func(o *Options) { o.Network = netip.Prefix{} }, "Options.Network"},
		{"no subnet with masquerade", func(o *Options) { o.PodSubnet = netip.Prefix{} }, "Options.PodSubnet"},
		{"subnet outside network", func(o *Options) { o.PodSubnet = netip.MustParsePrefix("10.5.1.0/24") }, "Options.PodSubnet 10.5.1.0/24 is not inside"},
		{"IPv6 network on iptables", func(o *Options) { o.Network = netip.MustParsePrefix("fd00::/48") }, "Options.Network fd00::/48 is ipv6"},
		{"IPv6 previous subnet", func(o *Options) { o.PrevSubnet = netip.MustParsePrefix("fd00::/64") }, "Options.PrevSubnet"},
		{"negative resync", func(o *Options) { o.Resync = -time.Second }, "Options.Resync -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(f)
			tt.change(&o)
			_, err := NewManager(o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewManager error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// assertMetrics compares every sample in reg with want, keyed like the text
// exposition format: name{label="value",...}.
func assertMetrics(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := fam.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d samples, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
