package lab

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func commandIn(ctx context.Context, ns string, args ...string) *exec.Cmd {
	return netnsutil.Command(ctx, ns, args...)
}
