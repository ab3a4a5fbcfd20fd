#!/usr/bin/env bash
# Builds the real flanneld that the mixed-cluster and takeover tests (test/e2e)
# and the benchmarks run next to overlayd, from the separate module
# test/flanneld (flannel is not a dependency of overlayd itself). The binary is
# cached under $(go env GOCACHE) and only rebuilt when it is missing or was
# built from another test/flanneld/go.mod or go.sum (compared by content, not
# date). Prints the binary's path. The tests find it there, or at
# $OVERLAYD_FLANNELD. flanneld's udp backend has cgo files, so this needs a C
# compiler (CGO_ENABLED=1).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=test/flanneld
out="${OVERLAYD_FLANNELD:-$(go env GOCACHE)/overlayd-flanneld/flanneld}"
stamp=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)
if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$out"
  exit 0
fi
version=$(cd "$mod" && go list -m -f '{{.Version}}' github.com/flannel-io/flannel)
echo "building flanneld $version (cached afterwards in $out)" >&2
mkdir -p "$(dirname "$out")"
(cd "$mod" && CGO_ENABLED=1 go build -trimpath \
  -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$version" \
  -o "$out.tmp" github.com/flannel-io/flannel)
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
