package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestHostNodeID: the identity is a hash of the machine id (or hostname),
// stable, distinct per machine, and never the id itself.
func TestHostNodeID(t *testing.T) {
	file := func(s string, err error) func(string) ([]byte, error) {
		return func(string) ([]byte, error) { return []byte(s), err }
	}
	host := func(s string, err error) func() (string, error) { return func() (string, error) { return s, err } }
	noFile := file("", os.ErrNotExist)
	tests := []struct {
		name     string
		readFile func(string) ([]byte, error)
		hostname func() (string, error)
		same     string // name of the case that must give the same id ("" none)
		empty    bool
	}{
		{"machine id", file("0123456789abcdef0123456789abcdef\n", nil), host("a", nil), "", false},
		{"same machine id, other host", file("0123456789abcdef0123456789abcdef", nil), host("b", nil), "machine id", false},
		{"other machine id", file("fedcba9876543210fedcba9876543210", nil), host("a", nil), "", false},
		{"hostname only", noFile, host("node-7", nil), "", false},
		{"empty machine id file", file("\n", nil), host("node-7", nil), "hostname only", false},
		{"nothing", noFile, host("", errors.New("no name")), "", true},
	}
	got := map[string]string{}
	for _, tt := range tests {
		id := hostNodeID(tt.readFile, tt.hostname)
		got[tt.name] = id
		switch {
		case tt.empty:
			if id != "" {
				t.Errorf("%s: %q, want empty", tt.name, id)
			}
			continue
		case len(id) != 32 || strings.Contains(id, "0123456789abcdef"):
			t.Errorf("%s: %q, want 32 hex digits not revealing the machine id", tt.name, id)
		case tt.same != "" && id != got[tt.same]:
			t.Errorf("%s: %q differs from %s's %q", tt.name, id, tt.same, got[tt.same])
		}
	}
	if got["machine id"] == got["other machine id"] || got["machine id"] == got["hostname only"] {
		t.Errorf("distinct machines share an identity: %v", got)
	}
}
