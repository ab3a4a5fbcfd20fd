package stream

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
	"github.com/overlayd/overlayd/internal/netnsutil"
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
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseIperf3 error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseIperf3 = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMeasureBetweenNamespaces(t *testing.T) {
	a, b := vethPair(t)
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

func vethPair(t *testing.T) (nsnet.Endpoint, nsnet.Endpoint) {
	t.Helper()
	nsA, nsB := netnsutil.NewT(t, "stra"), netnsutil.NewT(t, "strb")
	netnsutil.MustExec(t, nsA, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", nsB)
	netnsutil.MustExec(t, nsA, "ip", "addr", "add", "198.51.100.1/24", "dev", "v0")
	netnsutil.MustExec(t, nsA, "ip", "link", "set", "v0", "up")
	netnsutil.MustExec(t, nsB, "ip", "addr", "add", "198.51.100.2/24", "dev", "v1")
	netnsutil.MustExec(t, nsB, "ip", "link", "set", "v1", "up")
	return nsnet.Endpoint{Name: "a", NS: nsA, IP: netip.MustParseAddr("198.51.100.1")},
		nsnet.Endpoint{Name: "b", NS: nsB, IP: netip.MustParseAddr("198.51.100.2")}
}
