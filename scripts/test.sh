#!/usr/bin/env bash
# Runs every test: unit tests, and (as root) the integration tests that use
# network namespaces, the real kernel, iptables and a throwaway etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/kube-apiserver.sh >/dev/null # cached build of the kube-apiserver test/kube runs against
scripts/flanneld.sh >/dev/null       # cached build of the real flanneld test/e2e runs next to overlayd
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 14m "$@" ./...
