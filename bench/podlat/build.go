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

// moduleRoot is the directory of the go.mod enclosing the working
// directory, as the go command sees it.
func moduleRoot(ctx context.Context) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == "/dev/null" {
		return "", errors.New("not inside the overlayd module: run from its checkout, or pass -overlayd and -out")
	}
	return filepath.Dir(mod), nil
}

// buildOverlayd compiles ./cmd/overlayd of the module at root into dir.
func buildOverlayd(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "overlayd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/overlayd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/overlayd in %s: %w\n%s", root, err, bytes.TrimSpace(out))
	}
	return bin, nil
}
