#!/usr/bin/env bash
# Builds the real flanneld that the mixed-cluster and takeover tests (test/e2e)
# and the benchmarks run next to overlayd, from the separate module
# test/flanneld (flannel is not a dependency of overlayd itself). The binary is
# cached under $(go env GOCACHE) and only rebuilt when test/flanneld's go.mod
# or go.sum changed (scripts/lib/cached-build.sh). Prints the binary's path.
# The tests find it there, or at $OVERLAYD_FLANNELD. flanneld's udp backend
# has cgo files, so this needs a C compiler (CGO_ENABLED=1).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/cached-build.sh
build() { # version, output
  CGO_ENABLED=1 go build -trimpath \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$1" \
    -o "$2" github.com/flannel-io/flannel
}
cached_build flanneld test/flanneld \
  "${OVERLAYD_FLANNELD:-$(go env GOCACHE)/overlayd-flanneld/flanneld}" github.com/flannel-io/flannel
