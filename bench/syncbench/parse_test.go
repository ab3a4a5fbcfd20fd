package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP overlayd_sync_in_sync 1 when in sync.
# TYPE overlayd_sync_in_sync gauge
overlayd_sync_in_sync 1
overlayd_sync_peers 3
overlayd_sync_kernel_entries{entry="fdb"} 3
overlayd_sync_kernel_entries{entry="neighbour"} 3
overlayd_sync_kernel_entries{entry="route"} 3
overlayd_sync_writes_total{entry="fdb",op="add"} 3
overlayd_sync_writes_total{entry="route",op="del"} 2
overlayd_sync_writes_total{entry="route",op="dump"} 0
overlayd_sync_passes_total{kind="full"} 4
overlayd_sync_pass_duration_seconds_sum 0.5
overlayd_sync_pass_duration_seconds_count 6
process_resident_memory_bytes 3.3554432e+07
`
	m, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	v := m.sync()
	want := syncView{inSync: true, peers: 3, neighbours: 3, fdb: 3, routes: 3, writes: 5, fullPasses: 4,
		passSeconds: 0.5, passesTimed: 6, processRSS: 32 << 20}
	if v != want {
		t.Errorf("sync view\n got %+v\nwant %+v", v, want)
	}
	if !v.converged(3) || v.converged(4) {
		t.Errorf("converged(3) = %v, converged(4) = %v", v.converged(3), v.converged(4))
	}
	if _, err := parseMetrics("overlayd_sync_peers three\n"); err == nil {
		t.Error("a non-numeric value parsed")
	}
	if v := (metrics{}).sync(); !v.scrapeMissing {
		t.Error("an empty scrape is not flagged")
	}
}

// TestParseMetricsBothFamilies: a dual-stack node's series carry a
// family label; the view is both planes together.
func TestParseMetricsBothFamilies(t *testing.T) {
	var b strings.Builder
	for _, f := range []struct {
		family string
		n      int
	}{{"ipv4", 3}, {"ipv6", 2}} {
		fam := `family="` + f.family + `"`
		b.WriteString("overlayd_sync_in_sync{" + fam + "} 1\n")
		b.WriteString("overlayd_sync_peers{" + fam + "} 3\n")
		for _, e := range []string{"fdb", "neighbour", "route"} {
			b.WriteString(`overlayd_sync_kernel_entries{entry="` + e + `",` + fam + "} " + string(rune('0'+f.n)) + "\n")
		}
		b.WriteString(`overlayd_sync_writes_total{entry="fdb",` + fam + `,op="add"} 3` + "\n")
		b.WriteString("overlayd_sync_passes_total{" + fam + `,kind="full"} 1` + "\n")
		b.WriteString("overlayd_sync_route_mode{" + fam + `,mode="nexthop"} 1` + "\n")
	}
	m, err := parseMetrics(b.String())
	if err != nil {
		t.Fatal(err)
	}
	v := m.sync()
	if !v.inSync || v.peers != 3 || v.neighbours != -1 || v.routes != -1 || v.writes != 6 || v.fullPasses != 2 || !v.nexthopMode || v.scrapeMissing {
		t.Fatalf("dual-stack view %+v", v)
	}
	if v.converged(3) || !m.syncOf(`family="ipv4"`).converged(3) {
		t.Fatal("converged must wait for the IPv6 plane")
	}
}

func TestPercentileMs(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       int
		want    float64
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7},
		{"median of odd", ms(3, 1, 2), 50, 2},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99},
		{"p100 is the max", ms(hundred...), 100, 100},
		{"p50 of 100 is the 50th", ms(hundred...), 50, 50},
	}
	for _, tc := range tests {
		if got := percentileMs(tc.samples, tc.p); got != tc.want {
			t.Errorf("%s: percentileMs(p%d) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(config) bool
	}{
		{args: nil, check: func(c config) bool { return len(c.ns) == 3 && c.ns[2] == 10000 && len(c.routes) == 0 }},
		{args: []string{"-n", "", "-routes", "1000, 40000"}, check: func(c config) bool { return len(c.ns) == 0 && c.routes[1] == 40000 }},
		{args: []string{"-daemon-env", "GOGC=50,GOMEMLIMIT=30MiB"}, check: func(c config) bool { return len(c.daemonEnv) == 2 }},
		{args: []string{"-n", "", "-routes", ""}, wantErr: "nothing to do"},
		{args: []string{"-n", "10k"}, wantErr: "not a count"},
		{args: []string{"-n", "0"}, wantErr: "not a count"},
		{args: []string{"-daemon-env", "GOGC"}, wantErr: "not KEY=VALUE"},
		{args: []string{"-events", "0"}, wantErr: "-events"},
		{args: []string{"-resync", "1ms"}, wantErr: "-resync"},
	}
	for _, tc := range tests {
		c, err := parseFlags(tc.args)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parseFlags(%q) error %v, want one containing %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("parseFlags(%q): %v", tc.args, err)
		case tc.wantErr == "" && !tc.check(c):
			t.Errorf("parseFlags(%q) = %+v", tc.args, c)
		}
	}
}

func TestJudge(t *testing.T) {
	good := runResult{N: targetN}
	good.Cold.Ratio, good.Idle.MaxMs, good.Idle.PassesMs = 1.2, 30, []float64{30}
	good.Events.AddP99Ms, good.Idle.Memory.RSSMiB = 3, 35
	bad := good
	bad.Cold.Ratio, bad.Warm.Writes = 2, 1
	small := runResult{N: 1000}
	small.Events.AddP99Ms = 7
	tests := []struct {
		name    string
		runs    []runResult
		wantMet []bool
	}{
		{"all met", []runResult{good}, []bool{true, true, true, true, true}},
		{"cold and warm missed", []runResult{bad}, []bool{false, true, true, false, true}},
		{"p99 missed at another N", []runResult{small, good}, []bool{true, true, false, true, true}},
		{"no 10k run: no cold or idle verdict", []runResult{small}, []bool{false, true, true}},
		{"no runs", nil, nil},
	}
	for _, tc := range tests {
		got := judge(tc.runs)
		if len(got) != len(tc.wantMet) {
			t.Errorf("%s: %d verdicts, want %d: %+v", tc.name, len(got), len(tc.wantMet), got)
			continue
		}
		for i, v := range got {
			if v.Met != tc.wantMet[i] {
				t.Errorf("%s: %q met=%v, want %v", tc.name, v.Target, v.Met, tc.wantMet[i])
			}
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{5: "5", 999: "999", 1000: "1,000", 40000: "40,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
