package logtest

import (
	"sync"
	"testing"
)

func TestBufferQueries(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { b.Logger().Info("peer added", "subnet", "10.244.1.0/24") })
	}
	wg.Wait()
	b.Logger().Warn("lease refused")
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"count", b.Count("peer added"), 4},
		{"info lines", len(b.Lines("INFO", "peer added")), 4},
		{"warn lines", len(b.Lines("WARN", "refused")), 1},
		{"no such level", len(b.Lines("ERROR", "")), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	b.MustContain(t, "peer added", "lease refused")
}
