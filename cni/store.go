package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// containerIDPattern is what the CNI specification allows in
// CNI_CONTAINERID; it also keeps the ID a single path element.
var containerIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

func checkContainerID(id string) error {
	if !containerIDPattern.MatchString(id) {
		return fmt.Errorf("CNI_CONTAINERID %q: want letters, digits, '_', '.', '-', not starting with a symbol", id)
	}
	return nil
}

// saveConf writes the delegate configuration to <dataDir>/<id>: the
// directory mode 0700, the file 0600, as flannel's plugin does.
func saveConf(dataDir, id string, conf []byte) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("dataDir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, id)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		return fmt.Errorf("save delegate configuration: %w", err)
	}
	return nil
}

// loadConf reads the configuration saved by ADD; ok is false when there
// is none (DEL of an unknown or already deleted container).
func loadConf(dataDir, id string) (conf []byte, ok bool, err error) {
	conf, err = os.ReadFile(filepath.Join(dataDir, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read saved delegate configuration: %w", err)
	}
	return conf, true, nil
}

// removeConf deletes the saved configuration; a failure is not reported,
// the delegate has already released the container's resources.
func removeConf(dataDir, id string) {
	_ = os.Remove(filepath.Join(dataDir, id))
}
