package etcdv2

import (
	"errors"
	"fmt"
	"strings"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/subnet/etcdv3"
)

// hasCode reports whether err is an etcd v2 error with the given code.
func hasCode(err error, code int) bool {
	var etcdErr client.Error
	return errors.As(err, &etcdErr) && etcdErr.Code == code
}

// errorIndex returns the etcd index an etcd v2 error was answered at.
func errorIndex(err error) uint64 {
	var etcdErr client.Error
	if errors.As(err, &etcdErr) {
		return etcdErr.Index
	}
	return 0
}

// endpointsError replaces the v2 client's *client.ClusterError, which
// hides its per-endpoint causes from errors.Is/As.
type endpointsError struct {
	endpoints []string
	errs      []error
}

func (e *endpointsError) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return fmt.Sprintf("no etcd endpoint of %s answered: %s", strings.Join(e.endpoints, ","), strings.Join(parts, "; "))
}

func (e *endpointsError) Unwrap() []error { return e.errs }

// explain makes a client error readable: per-endpoint causes exposed and
// hints for TLS and credential problems.
func (r *Registry) explain(err error) error {
	var cluster *client.ClusterError
	if errors.As(err, &cluster) && len(cluster.Errors) > 0 {
		errs := make([]error, len(cluster.Errors))
		for i, e := range cluster.Errors {
			errs[i] = etcdv3.ExplainTLSError(e, toV3Options(r.opts))
		}
		return &endpointsError{endpoints: r.opts.Endpoints, errs: errs}
	}
	if hasCode(err, client.ErrorCodeUnauthorized) {
		return r.explainUnauthorized(err)
	}
	return err
}

func (r *Registry) explainUnauthorized(err error) error {
	if r.opts.Username == "" {
		return fmt.Errorf("%w (hint: etcd v2 authentication is enabled: give --etcd-username and --etcd-password)", err)
	}
	return fmt.Errorf("%w (hint: etcd rejected the credentials of user %q: the password (--etcd-password) is wrong or the user may not access %s)",
		err, r.opts.Username, r.prefix)
}
