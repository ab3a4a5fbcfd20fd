package etcdv3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd v3 client waits for a usable connection until the request's
// deadline and then reports only "context deadline exceeded": why it could
// not connect (an untrusted certificate, a refused client certificate,
// nothing listening) is lost. connProbe recovers it for such failures by
// asking each endpoint's /version over plain HTTP(S) with the same TLS
// configuration, and explainingKV attaches the result to the KV errors
// the registry returns.

// connProbe explains connection failures to a set of endpoints.
type connProbe struct {
	endpoints []string
	client    *http.Client
	timeout   time.Duration
	opts      Options
}

func newConnProbe(o Options, tlsConfig *tls.Config) *connProbe {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: o.DialTimeout}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: o.DialTimeout,
		DisableKeepAlives:   true,
	}
	return &connProbe{endpoints: o.Endpoints, client: &http.Client{Transport: transport}, timeout: o.DialTimeout, opts: o}
}

// explain returns err with the reason the endpoints cannot be used when
// err is a deadline the caller did not cancel and no endpoint answers the
// probe; otherwise err unchanged.
func (p *connProbe) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	err = explainAuthError(err, p.opts)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	probeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	if cause := p.probe(probeCtx); cause != nil {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// probe returns why no endpoint is usable, or nil when one answers.
func (p *connProbe) probe(ctx context.Context) error {
	var errs []error
	for _, endpoint := range p.endpoints {
		err := p.probeOne(ctx, endpoint)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("endpoint %s: %w", endpoint, ExplainTLSError(err, p.opts)))
	}
	return errors.Join(errs...)
}

func (p *connProbe) probeOne(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/version", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err // the endpoint is named by the caller
	}
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil
}

// explainingKV decorates the client's KV (as etcd's namespace.NewKV does)
// so that every KV error passes through connProbe.explain.
type explainingKV struct {
	clientv3.KV
	probe *connProbe
}

func (k explainingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	resp, err := k.KV.Get(ctx, key, opts...)
	return resp, k.probe.explain(ctx, err)
}

func (k explainingKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	resp, err := k.KV.Put(ctx, key, val, opts...)
	return resp, k.probe.explain(ctx, err)
}

func (k explainingKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	resp, err := k.KV.Delete(ctx, key, opts...)
	return resp, k.probe.explain(ctx, err)
}

func (k explainingKV) Txn(ctx context.Context) clientv3.Txn {
	return explainingTxn{Txn: k.KV.Txn(ctx), ctx: ctx, probe: k.probe}
}

type explainingTxn struct {
	clientv3.Txn
	ctx   context.Context
	probe *connProbe
}

func (t explainingTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	return explainingTxn{Txn: t.Txn.If(cs...), ctx: t.ctx, probe: t.probe}
}

func (t explainingTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	return explainingTxn{Txn: t.Txn.Then(ops...), ctx: t.ctx, probe: t.probe}
}

func (t explainingTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	return explainingTxn{Txn: t.Txn.Else(ops...), ctx: t.ctx, probe: t.probe}
}

func (t explainingTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	return resp, t.probe.explain(t.ctx, err)
}
