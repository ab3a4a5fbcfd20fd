package icmpwire

import (
	"encoding/binary"
	"testing"
)

func TestChecksum(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"empty", nil, 0xffff},
		{"RFC 1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, ^uint16(0xddf2)},
		{"odd length pads a zero byte", []byte{0x01}, ^uint16(0x0100)},
	}
	for _, tt := range tests {
		if got := Checksum(tt.in); got != tt.want {
			t.Errorf("%s: Checksum = %#04x, want %#04x", tt.name, got, tt.want)
		}
	}
}

func TestEchoRequestVerifies(t *testing.T) {
	m := EchoRequest(0x1234, 7, []byte("abc"))
	if m[0] != TypeEchoRequest || binary.BigEndian.Uint16(m[4:]) != 0x1234 || binary.BigEndian.Uint16(m[6:]) != 7 || string(m[HeaderLen:]) != "abc" {
		t.Fatalf("echo request % x", m)
	}
	if Checksum(m) != 0 {
		t.Errorf("a message with its checksum in place sums to %#04x, want 0", Checksum(m))
	}
}
