// Package errtest checks the error of a table-test case: either an error
// containing a given text, or none.
package errtest

import (
	"strings"
	"testing"
)

// Check fails the test when want is set and err is nil or does not contain
// it, or when want is empty and err is not nil. It returns true only when
// no error was wanted: the case goes on to check its result.
func Check(t testing.TB, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	return false
}
