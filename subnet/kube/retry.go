package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/overlayd/overlayd/subnet"
)

// repeatLogEvery bounds how often an unchanged failure is logged again.
const repeatLogEvery = time.Minute

// retrier runs an operation until it succeeds or ctx ends, logging a
// failure when its message changes (and at most once a minute while it
// stays the same), then once when it succeeds after failing.
type retrier struct {
	log      *slog.Logger
	clock    subnet.Clock
	interval time.Duration
}

func (o *Options) retrier() retrier {
	return retrier{log: o.Logger, clock: o.Clock, interval: o.RetryInterval}
}

func (r retrier) do(ctx context.Context, what string, op func(context.Context) error) error {
	var lastMsg string
	var lastLog time.Time
	failures := 0
	for {
		err := op(ctx)
		if err == nil {
			if failures > 0 {
				r.log.Info(what+": done", "after_failures", failures)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		now := r.clock.Now()
		if msg := err.Error(); msg != lastMsg || now.Sub(lastLog) >= repeatLogEvery {
			r.log.Warn(what+"; retrying", "err", err, "retry_in", r.interval, "failures", failures)
			lastMsg, lastLog = msg, now
		}
		if err := subnet.Sleep(ctx, r.clock, r.interval); err != nil {
			return err
		}
	}
}

// explainAPIError wraps an API error with what was being done and, for
// the usual causes, what to fix.
func explainAPIError(err error, action string) error {
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w (RBAC: the ClusterRole of overlayd's service account needs pods get, nodes get, list, watch and nodes/status patch)", action, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %w (the API server refused the credentials: check the service account token or --kubeconfig-file)", action, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %w", action, err)
	case errors.As(err, &urlErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w (is the API server reachable? it is --kube-api-url, the server of --kubeconfig-file, or KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT in a pod)", action, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}
