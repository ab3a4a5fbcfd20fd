package main

import (
	"context"

	"github.com/overlayd/overlayd/internal/lab"
)

// buildOverlayd compiles ./cmd/overlayd of the enclosing module into dir.
func buildOverlayd(ctx context.Context, dir string) (string, error) {
	return lab.BuildOverlayd(ctx, dir)
}
