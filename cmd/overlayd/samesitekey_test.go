package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadSameSiteKey: a key is made once, 0600, and read back the same;
// a key file others could read, or one that does not parse, is replaced;
// no randomness is an error.
func TestLoadSameSiteKey(t *testing.T) {
	dir := t.TempDir()
	path := sameSiteKeyPath(filepath.Join(dir, "run", "flannel", "subnet.env"))
	key, created, err := loadSameSiteKey(path, rand.Reader)
	if err != nil || !created || len(key) != ed25519.PrivateKeySize {
		t.Fatalf("first load: %d-byte key, created %v, %v", len(key), created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode(), err)
	}
	again, created, err := loadSameSiteKey(path, rand.Reader)
	if err != nil || created || !again.Equal(key) {
		t.Fatalf("second load: created %v, same %v, %v", created, again.Equal(key), err)
	}
	tests := []struct {
		name  string
		spoil func() error
	}{
		{"readable by others", func() error { return os.Chmod(path, 0o644) }},
		{"garbage", func() error { return os.WriteFile(path, []byte("not a key\n"), 0o600) }},
	}
	for _, tt := range tests {
		if err := tt.spoil(); err != nil {
			t.Fatal(err)
		}
		fresh, created, err := loadSameSiteKey(path, rand.Reader)
		if err != nil || !created || fresh.Equal(key) {
			t.Errorf("%s: created %v, same as the old key %v, %v; want a new key", tt.name, created, fresh.Equal(key), err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v after replacement", tt.name, st.Mode())
		}
		key = fresh
	}
	if _, _, err := loadSameSiteKey(filepath.Join(dir, "other.key"), bytes.NewReader(nil)); err == nil {
		t.Error("no randomness: no error")
	}
	if _, err := readSameSiteKey(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
}
