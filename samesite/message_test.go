package samesite

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	cases := []message{
		{kind: kindProbe, nonce: nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{kind: kindAnswer, nonce: nonce{9}, subnet: netip.MustParsePrefix("10.244.7.0/24"), mac: [6]byte{0x02, 0xab, 0, 0, 0, 0x7f},
			probed: netip.MustParseAddr("198.51.100.3"), sig: [sigLen]byte{1, 2, 3, 63: 9}},
		{kind: kindAnswer, subnet: netip.MustParsePrefix("0.0.0.0/0"), probed: netip.MustParseAddr("0.0.0.0")},
	}
	for _, m := range cases {
		t.Run(m.kind.String(), func(t *testing.T) {
			b := m.marshal()
			if len(b) != messageLen {
				t.Fatalf("length %d, want %d", len(b), messageLen)
			}
			got, err := parseMessage(b)
			if err != nil || got != m {
				t.Fatalf("parse(marshal(%+v)) = %+v, %v", m, got, err)
			}
		})
	}
}

func TestParseMessageRejectsMalformed(t *testing.T) {
	good := message{kind: kindAnswer, subnet: netip.MustParsePrefix("10.244.7.0/24")}.marshal()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "length 0"},
		{"short", good[:messageLen-1], "length 100"},
		{"long", append(append([]byte(nil), good...), 0), "length 102"},
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"version 1 (unsigned)", edit(func(b []byte) []byte { b[4] = 1; return b }), "version 1, want 2"},
		{"kind", edit(func(b []byte) []byte { b[5] = 7; return b }), "kind 7"},
		{"prefix length", edit(func(b []byte) []byte { b[26] = 33; return b }), "prefix length 33"},
		{"unmasked", edit(func(b []byte) []byte { b[25] = 1; return b }), "10.244.7.1/24 is not masked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseMessage(c.data)
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want errMalformed saying %q", err, c.want)
			}
		})
	}
}
