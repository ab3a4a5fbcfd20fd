package subnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// configRetryInterval is how often WaitForConfig asks again (flannel's 1 s).
const configRetryInterval = time.Second

// WaitForConfig reads and parses <prefix>/config, retrying every second
// until it is present and valid or ctx ends. It logs why it waits (missing,
// unreadable, or invalid naming the field) only when the reason changes.
// clock and log may be nil.
func WaitForConfig(ctx context.Context, reg Registry, clock Clock, log *slog.Logger) (*Config, error) {
	if clock == nil {
		clock = RealClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lastReason := ""
	for {
		cfg, err := fetchConfig(ctx, reg)
		if err == nil {
			if lastReason != "" {
				log.Info("network config is now valid", "network", cfg.Network, "subnet_len", cfg.SubnetLen)
			}
			return cfg, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for network config: %w", ctx.Err())
		}
		if reason := err.Error(); reason != lastReason {
			log.Warn("waiting for a valid network config", "reason", reason, "retry_every", configRetryInterval)
			lastReason = reason
		}
		if err := Sleep(ctx, clock, configRetryInterval); err != nil {
			return nil, fmt.Errorf("wait for network config: %w (last problem: %s)", err, lastReason)
		}
	}
}

func fetchConfig(ctx context.Context, reg Registry) (*Config, error) {
	data, err := reg.GetNetworkConfig(ctx)
	switch {
	case errors.Is(err, ErrConfigNotFound):
		return nil, fmt.Errorf("network config is missing: %w", err)
	case err != nil:
		return nil, fmt.Errorf("read network config: %w", err)
	}
	return ParseConfig(data)
}
