package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildOverlayd compiles ./cmd/overlayd of the enclosing module into dir
// and returns the binary's path.
func BuildOverlayd(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the overlayd module: run from its checkout")
	}
	bin := filepath.Join(dir, "overlayd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/overlayd")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/overlayd: %w\n%s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// BuildOverlaydT builds overlayd into the test's temp dir, failing the test
// on error.
func BuildOverlaydT(t testing.TB) string {
	t.Helper()
	bin, err := BuildOverlayd(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("build overlayd: %v", err)
	}
	return bin
}

// RunWithOverlayd is a TestMain body for integration test packages: as
// root it builds overlayd once into a temporary directory, stores its
// path in *bin, runs the tests and removes the directory. Not as root it
// just runs the tests, which skip themselves.
func RunWithOverlayd(m *testing.M, bin *string) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "overlayd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = BuildOverlayd(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
