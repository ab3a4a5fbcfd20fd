#!/usr/bin/env bash
# Builds the real kube-apiserver that the kube subnet manager's integration
# tests (test/kube) run against, from the separate module test/kubeapiserver
# (k8s.io/kubernetes is not a dependency of overlayd itself). The binary is
# cached under $(go env GOCACHE) and only rebuilt when it is missing or was
# built from another test/kubeapiserver/go.mod or go.sum (compared by content,
# not date: a fresh clone has new dates). Prints the binary's path.
# The tests find it there, or at $OVERLAYD_KUBE_APISERVER.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=test/kubeapiserver
out="${OVERLAYD_KUBE_APISERVER:-$(go env GOCACHE)/overlayd-kube-apiserver/kube-apiserver}"
stamp=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)
if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$out"
  exit 0
fi
version=$(cd "$mod" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
echo "building kube-apiserver $version (cached afterwards in $out)" >&2
mkdir -p "$(dirname "$out")"
(cd "$mod" && go build -trimpath \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version" \
  -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
