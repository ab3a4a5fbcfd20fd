package logtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		lines int
		want  string
	}{
		{name: "last two", path: path, lines: 2, want: "two\nthree"},
		{name: "more than there are", path: path, lines: 10, want: "one\ntwo\nthree"},
		{name: "missing file", path: path + ".gone", lines: 2, want: "(cannot read " + path + ".gone: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FileTail(tt.path, tt.lines); !strings.HasPrefix(got, tt.want) || (!strings.HasPrefix(tt.want, "(") && got != tt.want) {
				t.Errorf("FileTail(%q, %d) = %q, want %q", tt.path, tt.lines, got, tt.want)
			}
		})
	}
}
