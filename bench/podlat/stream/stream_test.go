package stream

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
	"github.com/overlayd/overlayd/internal/errtest"
)

func TestParseIperf3(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    Result
		wantErr string
	}{
		{
			name: "receiver sum",
			out: `{"start":{},"end":{"sum_sent":{"bytes":1250000000,"retransmits":7,"bits_per_second":3.4e9},
				"sum_received":{"bytes":1200000000,"seconds":3.0,"bits_per_second":3.2e9}}}`,
			want: Result{Tool: ToolIperf3, BitsPerSecond: 3.2e9, Bytes: 1200000000, Duration: 3 * time.Second, Retransmits: 7},
		},
		{name: "error", out: `{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`, wantErr: "unable to connect"},
		{name: "no sum", out: `{"end":{}}`, wantErr: "bits_per_second"},
		{name: "not JSON", out: `iperf3: error`, wantErr: "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf3([]byte(tt.out))
			if !errtest.Check(t, err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Fatalf("parseIperf3 = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMeasureBetweenNamespaces(t *testing.T) {
	a, b := nsnet.VethPairT(t, "str", netip.MustParsePrefix("198.51.100.0/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name string
		opts Options
	}{
		{"builtin", Options{Duration: 300 * time.Millisecond}},
		{"iperf3", Options{Duration: time.Second, Iperf3: FindIperf3()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "iperf3" && tt.opts.Iperf3 == "" {
				t.Skip("skipping: iperf3 is not installed")
			}
			res, err := Measure(ctx, a, b, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Tool != tt.name || res.BitsPerSecond <= 0 || res.Bytes <= 0 || res.Duration <= 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
	if _, err := Measure(ctx, a, b, Options{}); err == nil {
		t.Error("Measure with no duration succeeded")
	}
}
