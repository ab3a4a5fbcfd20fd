package errtest

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		goOn bool
	}{
		{name: "no error wanted, none", goOn: true},
		{name: "error wanted and contained", err: errors.New("bad prefix: empty"), want: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(t, tt.err, tt.want); got != tt.goOn {
				t.Errorf("Check = %v, want %v", got, tt.goOn)
			}
		})
	}
}
