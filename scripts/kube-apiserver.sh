#!/usr/bin/env bash
# Builds the real kube-apiserver that the kube subnet manager's integration
# tests (test/kube) run against, from the separate module test/kubeapiserver
# (k8s.io/kubernetes is not a dependency of overlayd itself). The binary is
# cached under $(go env GOCACHE) and only rebuilt when test/kubeapiserver's
# go.mod or go.sum changed (scripts/lib/cached-build.sh). Prints the
# binary's path. The tests find it there, or at $OVERLAYD_KUBE_APISERVER.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/cached-build.sh
build() { # version, output
  go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$1" \
    -o "$2" k8s.io/kubernetes/cmd/kube-apiserver
}
cached_build kube-apiserver test/kubeapiserver \
  "${OVERLAYD_KUBE_APISERVER:-$(go env GOCACHE)/overlayd-kube-apiserver/kube-apiserver}" k8s.io/kubernetes
