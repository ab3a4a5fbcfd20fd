package offload

import (
	"errors"
	"testing"
)

func TestDecide(t *testing.T) {
	failed := errors.New("iptables: No chain/target/match by that name (CT)")
	tests := []struct {
		mode      Mode
		exemptErr error
		on        bool
		why       Why
	}{
		{Auto, nil, true, WhyExempt},
		{Auto, failed, false, WhyExemptionFails},
		{On, nil, true, WhyFlag},
		{On, failed, true, WhyFlag}, // on means on: the exemption is not asked for
		{Off, nil, false, WhyFlag},
	}
	for _, tt := range tests {
		d := Decide(tt.mode, tt.exemptErr)
		if d.On != tt.on || d.Why != tt.why || d.Mode != tt.mode || d.Detail == "" {
			t.Errorf("Decide(%s, %v) = %+v, want on=%v why=%s", tt.mode, tt.exemptErr, d, tt.on, tt.why)
		}
	}
}

func TestWantsExemption(t *testing.T) {
	for m, want := range map[Mode]bool{Auto: true, On: false, Off: false} {
		if got := m.WantsExemption(); got != want {
			t.Errorf("%s.WantsExemption() = %v, want %v", m, got, want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"auto": Auto, "ON": On, " off ": Off} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "true", "1", "maybe"} {
		if _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q): want an error", in)
		}
	}
}
