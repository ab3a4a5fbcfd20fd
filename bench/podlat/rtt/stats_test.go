package rtt

import (
	"testing"
	"time"
)

func durations(us ...int) []time.Duration {
	d := make([]time.Duration, len(us))
	for i, v := range us {
		d[i] = time.Duration(v) * time.Microsecond
	}
	return d
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Microsecond // 1..100 µs
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample", durations(7), 0.999, 7 * time.Microsecond},
		{"p50 of 1..100", hundred, 0.50, 50 * time.Microsecond},
		{"p90 of 1..100", hundred, 0.90, 90 * time.Microsecond},
		{"p99 of 1..100", hundred, 0.99, 99 * time.Microsecond},
		{"p99.9 of 1..100 is the max", hundred, 0.999, 100 * time.Microsecond},
		{"p50 of four", durations(1, 2, 3, 4), 0.5, 2 * time.Microsecond},
		{"tiny q is the min", durations(1, 2, 3, 4), 0.0001, 1 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("%s: Percentile(q=%g) = %s, want %s", tt.name, tt.q, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	in := durations(30, 10, 20, 40)
	s := Summarize(in, 2)
	want := Summary{Count: 4, Lost: 2, Min: 10 * time.Microsecond, Mean: 25 * time.Microsecond,
		P50: 20 * time.Microsecond, P90: 40 * time.Microsecond, P99: 40 * time.Microsecond, P999: 40 * time.Microsecond, Max: 40 * time.Microsecond}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if in[0] != 30*time.Microsecond {
		t.Fatal("Summarize reordered its input")
	}
	if got := Summarize(nil, 3); got != (Summary{Lost: 3}) {
		t.Fatalf("Summarize(nil) = %+v", got)
	}
}
