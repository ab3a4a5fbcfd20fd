package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/overlayd/overlayd/subnet"
)

// sameSiteKeyName is the file, next to the subnet file, that holds this
// node's same-site signing key (/run/flannel/overlayd-samesite.key): its
// public half is the lease's OverlaydKey.
const sameSiteKeyName = "overlayd-samesite.key"

func sameSiteKeyPath(subnetFile string) string {
	return filepath.Join(filepath.Dir(subnetFile), sameSiteKeyName)
}

// loadSameSiteKey reads the ed25519 key at path (its 32-byte seed in
// base64), or makes a new one from rand and writes it, mode 0600. A key
// file that group or others can read (or that does not parse) is
// replaced: whoever read it could answer probes as this node. created
// reports a new key.
func loadSameSiteKey(path string, rand io.Reader) (key ed25519.PrivateKey, created bool, err error) {
	key, err = readSameSiteKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errKeyUnusable) {
		return nil, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, false, fmt.Errorf("same-site key: no randomness: %w", err)
	}
	if err := subnet.WriteSecretFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n")); err != nil {
		return nil, false, fmt.Errorf("same-site key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), true, nil
}

// errKeyUnusable marks a key file to replace.
var errKeyUnusable = errors.New("unusable same-site key file")

func readSameSiteKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s has mode %s, want 0600", errKeyUnusable, path, st.Mode())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("same-site key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s does not hold a base64 ed25519 seed", errKeyUnusable, path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// sameSiteLeaseKey loads (or makes) the same-site key when detection is
// on, keeps it for setupSameSite, and returns the public half for our
// lease; nil (no same-site path to us) when off or the key is unavailable.
func (d *daemon) sameSiteLeaseKey() []byte {
	if d.opts.sameSitePort == 0 {
		return nil
	}
	path := sameSiteKeyPath(d.opts.subnetFile)
	key, created, err := loadSameSiteKey(path, rand.Reader)
	if err != nil {
		d.log.Warn("same-site detection unavailable: no signing key; VXLAN to every peer goes to its public address", "path", path, "err", err)
		return nil
	}
	if created {
		d.log.Info("same-site signing key created", "path", path)
	}
	d.sameSiteKey = key
	return key.Public().(ed25519.PublicKey)
}
