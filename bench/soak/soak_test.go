package main

import (
	"context"
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

var ciDuration = flag.Duration("soak-duration", 2*time.Minute, "length of TestSoakShort's churn")

// TestSoakShort is the CI version of the soak: 5,000 peers and 50
// changes a second for -soak-duration (2 minutes), sampled every 10 s.
// It fails on any kernel-vs-etcd mismatch at the end or any failed
// change, and logs the report.
func TestSoakShort(t *testing.T) {
	netnsutil.RequireRoot(t)
	if _, err := etcdtest.Binary(); err != nil {
		t.Skip(err)
	}
	cfg := config{peers: 5000, rate: 50, duration: *ciDuration, sample: 10 * time.Second, resync: 5 * time.Second, out: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), *ciDuration+5*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mismatches != 0 {
		t.Errorf("%d kernel-vs-etcd mismatches at the end: %v", res.Mismatches, res.Examples)
	}
	if res.Ops.Errors != 0 {
		t.Errorf("%d changes failed", res.Ops.Errors)
	}
	if len(res.Samples) < 2 {
		t.Errorf("%d samples", len(res.Samples))
	}
	if err := writeReport(cfg, res); err != nil {
		t.Error(err)
	}
	t.Logf("%s", markdown(cfg, res))
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"-peers=0"}, true},
		{[]string{"-rate=0"}, true},
		{[]string{"-duration=1s", "-sample=10s"}, true},
		{[]string{"-peers=100", "-rate=5", "-duration=1m"}, false},
	}
	for _, tt := range tests {
		if _, err := parseFlags(tt.args); (err != nil) != tt.wantErr {
			t.Errorf("parseFlags(%v) = %v, want error %v", tt.args, err, tt.wantErr)
		}
	}
}
