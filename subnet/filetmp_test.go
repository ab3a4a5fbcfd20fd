package subnet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveStaleTemps: the temporary files a SIGKILL during a write
// leaves are removed; the file itself, other files and directories stay.
func TestRemoveStaleTemps(t *testing.T) {
	tests := []struct {
		name        string
		files, dirs []string
		wantGone    []string
	}{
		{"none", []string{"subnet.env"}, nil, nil},
		{"leftovers", []string{"subnet.env", ".subnet.env.tmp123", ".subnet.env.tmp9"}, nil, []string{".subnet.env.tmp123", ".subnet.env.tmp9"}},
		{"others kept", []string{".other.env.tmp1", "subnet.env.tmp1", ".subnet.env.tmp5"}, []string{".subnet.env.tmpdir"}, []string{".subnet.env.tmp5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tt.dirs {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			removed, err := RemoveStaleTemps(filepath.Join(dir, "subnet.env"))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range removed {
				got = append(got, filepath.Base(r))
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantGone) {
				t.Errorf("removed %v, want %v", got, tt.wantGone)
			}
			for _, f := range append(tt.files, tt.dirs...) {
				_, err := os.Stat(filepath.Join(dir, f))
				if gone := slices.Contains(tt.wantGone, f); gone != os.IsNotExist(err) {
					t.Errorf("%s: gone=%v, stat err %v", f, gone, err)
				}
			}
		})
	}
	if _, err := RemoveStaleTemps(filepath.Join(t.TempDir(), "missing", "subnet.env")); err != nil {
		t.Errorf("missing directory: %v", err)
	}
}
