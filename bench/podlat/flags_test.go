package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(config) string
		wantErr string
	}{
		{name: "defaults", check: func(c config) string {
			if c.nodes != 3 || c.pods != 2 || c.roundTrips != 2000 || c.warmup != 200 || c.payload != 64 ||
				c.duration != 3*time.Second || c.throughput != throughputAuto || c.agents[0].Name != "overlayd" {
				return "unexpected defaults"
			}
			// flanneld joins by default when scripts/flanneld.sh built it.
			if wantAgents := map[bool]int{false: 1, true: 2}[c.flanneld != ""]; len(c.agents) != wantAgents {
				return "unexpected defaults"
			}
			return ""
		}},
		{name: "two agents", args: []string{"-agent", "overlayd", "-agent", "fl=/opt/flanneld --iface={{.Iface}}", "-count", "100"},
			check: func(c config) string {
				if len(c.agents) != 2 || c.agents[1].Name != "fl" || c.roundTrips != 100 {
					return "want overlayd and fl, 100 round trips"
				}
				return ""
			}},
		{name: "duplicate agent name", args: []string{"-agent", "overlayd", "-agent", "overlayd={{.Bin}}"}, wantErr: "used twice"},
		{name: "one node", args: []string{"-nodes", "1"}, wantErr: "-nodes 1"},
		{name: "no pods", args: []string{"-pods", "0"}, wantErr: "-pods 0"},
		{name: "zero count", args: []string{"-count", "0"}, wantErr: "-count 0"},
		{name: "payload too big", args: []string{"-payload", "9000"}, wantErr: "-payload 9000"},
		{name: "bad throughput", args: []string{"-throughput", "netperf"}, wantErr: "-throughput"},
		{name: "stray argument", args: []string{"--ip-masq"}, wantErr: "flag provided but not defined"},
		{name: "unquoted template", args: []string{"-agent", "x=a", "b"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			c, err := parseFlags(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			}
			if msg := tt.check(c); msg != "" {
				t.Fatalf("parseFlags(%q) = %+v: %s", tt.args, c, msg)
			}
		})
	}
}

func TestReproduceCommand(t *testing.T) {
	got := reproduceCommand([]string{"-nodes", "3", "-agent", "f=/opt/flanneld --iface={{.Iface}}", "-out", "it's"})
	want := `go run ./bench/podlat -nodes 3 -agent 'f=/opt/flanneld --iface={{.Iface}}' -out 'it'\''s'`
	if got != want {
		t.Fatalf("reproduceCommand = %s\nwant %s", got, want)
	}
}

func TestParseCPUModel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) CPU @ 2.30GHz\nmodel name\t: other\n", "Intel(R) Xeon(R) CPU @ 2.30GHz"},
		{"processor\t: 0\nCPU part\t: 0xd0c\n", "unknown"},
	}
	for _, tt := range tests {
		if got := parseCPUModel([]byte(tt.in)); got != tt.want {
			t.Errorf("parseCPUModel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// With a flanneld binary at hand, the default run compares overlayd with
// it; the flanneld agent runs that binary with overlayd's default flags.
func TestDefaultAgentsIncludeFlanneld(t *testing.T) {
	c, err := parseFlags([]string{"-flanneld", "/opt/flanneld"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.agents) != 2 || c.agents[0].Name != "overlayd" || c.agents[1].Name != "flanneld" {
		t.Fatalf("default agents %+v, want overlayd and flanneld", c.agents)
	}
	data := sampleData()
	data.Flanneld = c.flanneld
	argv, err := c.agents[1].argv(data)
	if err != nil {
		t.Fatal(err)
	}
	if argv[0] != "/opt/flanneld" || !slices.Contains(argv, "--ip-masq") {
		t.Errorf("flanneld argv %q", argv)
	}
}
