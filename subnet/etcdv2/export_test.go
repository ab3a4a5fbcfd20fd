package etcdv2

import (
	"log/slog"
	"net/http"

	client "go.etcd.io/etcd/client/v2"
)

// NewWithKeysAPI builds a Registry on a given KeysAPI, so tests can wrap
// the real one (to lose a race on purpose).
func NewWithKeysAPI(keys client.KeysAPI, prefix string, logger *slog.Logger) *Registry {
	return newRegistry(keys, &http.Transport{}, withDefaults(Options{Prefix: prefix, Logger: logger}))
}
