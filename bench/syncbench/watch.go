package main

import (
	"context"
	"fmt"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchrun"
)

// watchSync scrapes the node's sync view every poll until done reports
// true (checked before each wait), handing step the view scraped first
// (before the phase's change), the previous one and the current one.
// Failed scrapes are skipped. When ctx ends first, the error is returned
// explained, in the context what gives for the last view seen.
func (b *bench) watchSync(ctx context.Context, poll time.Duration, first syncView, done func() bool,
	step func(first, prev, cur syncView), what func(last syncView) string) error {
	prev := first
	for !done() {
		if err := benchrun.Sleep(ctx, poll); err != nil {
			return b.d.explain(fmt.Errorf("%s: %w", what(prev), err))
		}
		m, err := scrapeMetrics(ctx, b.node.NS)
		if err != nil {
			continue
		}
		cur := m.sync()
		step(first, prev, cur)
		prev = cur
	}
	return nil
}
