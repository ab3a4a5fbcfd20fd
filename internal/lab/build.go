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
