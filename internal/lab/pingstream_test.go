package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

func TestPingStatsString(t *testing.T) {
	tests := []struct {
		stats PingStats
		want  string
	}{
		{PingStats{Sent: 10, Received: 10}, "10 sent, 10 received, 0 lost"},
		{PingStats{Sent: 10, Received: 6, Lost: []int{2, 3, 4, 8}}, "10 sent, 6 received, 4 lost (seq 2-4, 8)"},
	}
	for _, tc := range tests {
		if got := tc.stats.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// TestPingStreamCountsLoss: a stream over loopback loses nothing while lo
// is up and counts exactly the echoes sent while it is down, as one run.
func TestPingStreamCountsLoss(t *testing.T) {
	ns := netnsutil.NewT(t, "ps")
	netnsutil.MustExec(t, ns, "ip", "link", "set", "lo", "up")
	to := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name     string
		downFor  time.Duration
		wantLost bool
	}{
		{name: "steady", wantLost: false},
		{name: "lo down 200ms", downFor: 200 * time.Millisecond, wantLost: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := StartPingStream(ns, to, 5*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			if tc.downFor > 0 {
				netnsutil.MustExec(t, ns, "ip", "link", "set", "lo", "down")
				time.Sleep(tc.downFor)
				netnsutil.MustExec(t, ns, "ip", "link", "set", "lo", "up")
			}
			time.Sleep(150 * time.Millisecond)
			st := s.Stop(200 * time.Millisecond)
			t.Log(st)
			if st.Sent < 10 || st.Received+len(st.Lost) != st.Sent || len(st.LostAt) != len(st.Lost) {
				t.Fatalf("inconsistent stats: %+v", st)
			}
			if got := st.LostCount() > 0; got != tc.wantLost {
				t.Fatalf("lost %d echoes (%s), want loss %v", st.LostCount(), st, tc.wantLost)
			}
			if tc.wantLost && st.Lost[len(st.Lost)-1]-st.Lost[0]+1 != len(st.Lost) {
				t.Fatalf("loss is not one run of sequence numbers: %s", st)
			}
		})
	}
}
