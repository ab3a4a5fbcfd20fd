package errtest

import (
	"errors"
	"fmt"
	"testing"
)

// recorder is a testing.TB whose Fatalf records the failure instead of
// ending the test, so that Check's failures can be seen.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     string
		goOn     bool
		wantFail bool
	}{
		{name: "no error wanted, none", goOn: true},
		{name: "error wanted and contained", err: errors.New("bad prefix: empty"), want: "empty"},
		{name: "no error wanted, one came", err: errors.New("boom"), goOn: true, wantFail: true},
		{name: "error wanted, none came", want: "empty", wantFail: true},
		{name: "error wanted, another came", err: errors.New("bad prefix: long"), want: "empty", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			if got := Check(r, tt.err, tt.want); got != tt.goOn {
				t.Errorf("Check = %v, want %v", got, tt.goOn)
			}
			if failed := r.failed != ""; failed != tt.wantFail {
				t.Errorf("failed the test: %t (%q), want %t", failed, r.failed, tt.wantFail)
			}
		})
	}
}
