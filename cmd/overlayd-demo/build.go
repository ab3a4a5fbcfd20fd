package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildOverlayd compiles ./cmd/overlayd of the enclosing module into dir.
func buildOverlayd(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == "/dev/null" {
		return "", errors.New("not inside the overlayd module: run from its checkout, or pass -overlayd")
	}
	bin := filepath.Join(dir, "overlayd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/overlayd")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/overlayd: %w\n%s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}
