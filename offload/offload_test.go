package offload

import "testing"

func TestDecide(t *testing.T) {
	tests := []struct {
		mode    Mode
		release string
		on      bool
		why     Why
	}{
		{On, "3.10.0-1160.el7.x86_64", true, WhyFlag},
		{Off, "6.18.44", false, WhyFlag},
		{Auto, "6.18.44-fc-v1272", true, WhyKernelFixed},
		{Auto, "6.1.0-18-amd64", true, WhyKernelFixed},
		{Auto, "5.7.0", true, WhyKernelFixed},
		{Auto, "5.6.13-arch1", true, WhyKernelFixed},
		{Auto, "5.6.12", false, WhyKernelAffected},
		{Auto, "5.4.40-generic", false, WhyKernelAffected},
		{Auto, "5.4.0-52-generic", false, WhyKernelAffected}, // Ubuntu's ABI number, not the patch level: safe side
		{Auto, "5.4.41", true, WhyKernelFixed},
		{Auto, "5.5.19", false, WhyKernelAffected},
		{Auto, "4.19.123", true, WhyKernelFixed},
		{Auto, "4.19.122", false, WhyKernelAffected},
		{Auto, "4.14.181", true, WhyKernelFixed},
		{Auto, "4.9.300", false, WhyKernelAffected},
		{Auto, "3.10.0-1127.8.2.el7.x86_64", false, WhyKernelAffected},
		{Auto, "", false, WhyKernelUnknown},
		{Auto, "linux", false, WhyKernelUnknown},
		{Auto, "6", false, WhyKernelUnknown},
	}
	for _, tt := range tests {
		d := Decide(tt.mode, tt.release)
		if d.On != tt.on || d.Why != tt.why || d.Mode != tt.mode || d.Detail == "" {
			t.Errorf("Decide(%s, %q) = %+v, want on=%v why=%s", tt.mode, tt.release, d, tt.on, tt.why)
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

func TestParseKernelRelease(t *testing.T) {
	tests := map[string]KernelVersion{
		"6.18.44-fc-v1272":       {6, 18, 44},
		"3.10.0-1160.el7.x86_64": {3, 10, 0},
		"6.8":                    {6, 8, 0},
		"5.15.0+":                {5, 15, 0},
		"4.19.123.":              {4, 19, 123},
	}
	for in, want := range tests {
		if got, err := ParseKernelRelease(in); err != nil || got != want {
			t.Errorf("ParseKernelRelease(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func FuzzParseKernelRelease(f *testing.F) {
	for _, s := range []string{"6.18.44-fc", "3.10.0-1160.el7.x86_64", "", "1..2", "99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseKernelRelease(s)
		if err == nil && (v.Major < 0 || v.Minor < 0 || v.Patch < 0) {
			t.Fatalf("ParseKernelRelease(%q) = %v: negative", s, v)
		}
		Decide(Auto, s)
	})
}

func TestUpstreamRelease(t *testing.T) {
	tests := []struct {
		uname, signature, want string
	}{
		{"5.4.0-52-generic", "Ubuntu 5.4.0-52.57-generic 5.4.65\n", "5.4.65"},
		{"6.18.44", "", "6.18.44"},
		{"5.4.0-52-generic", "garbage", "5.4.0-52-generic"},
		{"5.4.0-52-generic", "Ubuntu 5.4.0-52.57-generic notaversion", "5.4.0-52-generic"},
	}
	for _, tt := range tests {
		if got := UpstreamRelease(tt.uname, []byte(tt.signature)); got != tt.want {
			t.Errorf("UpstreamRelease(%q, %q) = %q, want %q", tt.uname, tt.signature, got, tt.want)
		}
	}
	// Ubuntu 20.04's 5.4.0-52 is based on 5.4.65, which has the fix.
	if d := Decide(Auto, UpstreamRelease("5.4.0-52-generic", []byte("Ubuntu 5.4.0-52.57-generic 5.4.65"))); !d.On {
		t.Errorf("Ubuntu 5.4.0-52 (5.4.65): %+v, want offload on", d)
	}
}
