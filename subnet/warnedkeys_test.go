package subnet

import (
	"errors"
	"fmt"
	"testing"
)

// TestWarnedKeysBounded: churn of distinct malformed keys never holds
// more than the cap, a complete list drops the keys gone from it, and a
// forgotten key is news again.
func TestWarnedKeysBounded(t *testing.T) {
	const max = 64
	w := newWarnedKeys(max)
	for i := range 10 * max {
		key := fmt.Sprintf("/coreos.com/network/subnets/junk-%d", i)
		if !w.add(key, "bad") {
			t.Fatalf("key %d not news", i)
		}
		if w.len() > max {
			t.Fatalf("after %d keys %d remembered, want at most %d", i+1, w.len(), max)
		}
	}
	tests := []struct {
		name   string
		act    func(w *warnedKeys)
		key    string
		reason string
		news   bool
	}{
		{"same reason", func(*warnedKeys) {}, "/p/subnets/10.5.9.0-24", "r1", false},
		{"other reason", func(*warnedKeys) {}, "/p/subnets/10.5.9.0-24", "r2", true},
		{"forgotten", func(w *warnedKeys) { w.forget("10.5.9.0-24") }, "/p/subnets/10.5.9.0-24", "r1", true},
		{"gone from the list", func(w *warnedKeys) { w.keepOnly([]SkippedKey{{Key: "/p/subnets/x", Reason: errors.New("r1")}}) }, "/p/subnets/10.5.9.0-24", "r1", true},
		{"still in the list", func(w *warnedKeys) { w.keepOnly([]SkippedKey{{Key: "/p/subnets/10.5.9.0-24"}}) }, "/p/subnets/10.5.9.0-24", "r1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWarnedKeys(max)
			w.add("/p/subnets/10.5.9.0-24", "r1")
			tt.act(w)
			if got := w.add(tt.key, tt.reason); got != tt.news {
				t.Errorf("add(%s, %s) = %v, want %v", tt.key, tt.reason, got, tt.news)
			}
		})
	}
}
