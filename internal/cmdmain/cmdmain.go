// Package cmdmain is the main function of the commands that build a lab of
// network namespaces and tear it down at the end, whatever happens
// (overlayd-demo and the lab benchmarks).
package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run parses os.Args[1:] with parse, which prints its own errors (the
// command exits with status 0 after -h, 2 after any other), then calls run
// with a context that ends at SIGINT or SIGTERM and with os.Stdout. An
// error of run is printed as "name: error" and the command exits with
// status 1.
//
// Signals stay caught until run returns, so a second Ctrl-C cannot cut
// the teardown short; SIGPIPE is ignored, so a closed stdout (cmd | head)
// cannot either.
func Run[C any](name string, parse func(args []string, stderr io.Writer) (C, error), run func(ctx context.Context, c C, stdout io.Writer) error) {
	c, err := parse(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		os.Exit(1)
	}
}
