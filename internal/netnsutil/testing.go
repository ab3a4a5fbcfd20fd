package netnsutil

import (
	"context"
	"os"
	"testing"
)

// RequireRoot skips the test with a clear message unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run the suite as root, as CI does)")
	}
}

// NewT creates a namespace for a test and removes it (and every process in
// it) in t.Cleanup, whether the test passes or fails.
func NewT(t testing.TB, tag string) string {
	t.Helper()
	RequireRoot(t)
	name := UniqueName(tag)
	if err := Create(name); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if err := Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// MustExec runs a command in the namespace and fails the test on error.
func MustExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Exec(context.Background(), name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// MineT is Mine, failing the test on error.
func MineT(t testing.TB) []string {
	t.Helper()
	mine, err := Mine()
	if err != nil {
		t.Fatal(err)
	}
	return mine
}
