package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// findPlugin looks for the plugin named typ in the directories of
// CNI_PATH, in order.
func findPlugin(typ, cniPath string) (string, error) {
	if typ == "" || strings.ContainsRune(typ, '/') || typ == "." || typ == ".." {
		return "", fmt.Errorf("delegate type %q: not a plugin name", typ)
	}
	var dirs []string
	for _, dir := range filepath.SplitList(cniPath) {
		if dir == "" {
			continue
		}
		dirs = append(dirs, dir)
		path := filepath.Join(dir, typ)
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			return path, nil
		}
	}
	return "", fmt.Errorf("delegate plugin %q not found in CNI_PATH %v", typ, dirs)
}

// execPlugin runs the plugin with env and conf on stdin and returns its
// stdout. The plugin's stderr goes to stderr. On a non-zero exit the CNI
// error it printed is returned, or one made of its output.
func execPlugin(ctx context.Context, path string, env []string, conf []byte, stderr io.Writer) ([]byte, error) {
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(conf)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return nil, fmt.Errorf("run delegate %s: %w", path, err)
	}
	var e Error
	if jerr := json.Unmarshal(stdout.Bytes(), &e); jerr == nil && e.Msg != "" {
		return nil, &e
	}
	return nil, fmt.Errorf("delegate %s: %w: %s", path, err, truncate(bytes.TrimSpace(stdout.Bytes())))
}

// withEnv returns env with key set to value (replacing any earlier one).
func withEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
