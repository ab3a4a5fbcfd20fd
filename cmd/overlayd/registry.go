package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/etcdv3"
)

// registry is a subnet.Registry that holds a connection.
type registry interface {
	subnet.Registry
	Close() error
}

// openRegistry connects to etcd with the API --etcd-api names. "auto"
// looks for the network config: v3 first, then v2, else v3.
func openRegistry(ctx context.Context, o options, log *slog.Logger) (registry, string, error) {
	switch o.etcdAPI {
	case "v2":
		r, err := openV2(ctx, o, log)
		return r, "v2", err
	case "auto":
		return detectRegistry(ctx, o, log)
	default:
		r, err := openV3(ctx, o, log)
		return r, "v3", err
	}
}

// etcdOptions are the connection options of either API (etcdv2.Options
// is the same type).
func etcdOptions(o options, log *slog.Logger) etcdv3.Options {
	return etcdv3.Options{
		Endpoints: o.etcdEndpoints, Prefix: o.etcdPrefix,
		CAFile: o.etcdCAFile, CertFile: o.etcdCertFile, KeyFile: o.etcdKeyFile,
		Username: o.etcdUsername, Password: o.etcdPassword, Logger: log,
	}
}

func openV3(ctx context.Context, o options, log *slog.Logger) (registry, error) {
	return etcdv3.New(ctx, etcdOptions(o, log))
}

func openV2(ctx context.Context, o options, log *slog.Logger) (registry, error) {
	return etcdv2.New(ctx, etcdOptions(o, log))
}

func detectRegistry(ctx context.Context, o options, log *slog.Logger) (registry, string, error) {
	v3, err := openV3(ctx, o, log)
	if err != nil {
		return nil, "", err
	}
	if _, err := v3.GetNetworkConfig(ctx); err == nil || !errors.Is(err, subnet.ErrConfigNotFound) {
		log.Info("--etcd-api=auto chose v3", "why", "a v3 network config exists (or v3 answered with an error other than not found)")
		return v3, "v3", nil
	}
	v2, err := openV2(ctx, o, log)
	if err != nil {
		log.Info("--etcd-api=auto chose v3", "why", "no v3 config and the v2 API is not reachable", "v2_err", err)
		return v3, "v3", nil
	}
	if _, err := v2.GetNetworkConfig(ctx); err == nil {
		v3.Close()
		log.Info("--etcd-api=auto chose v2", "why", "no v3 network config, but a v2 one exists")
		return v2, "v2", nil
	}
	v2.Close()
	log.Info("--etcd-api=auto chose v3", "why", "no network config in either API yet")
	return v3, "v3", nil
}
