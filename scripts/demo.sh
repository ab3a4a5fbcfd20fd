#!/usr/bin/env bash
# Runs the demo: a throwaway etcd and three overlayd nodes in network
# namespaces on this machine, one pod each, pods pinging across the overlay.
# Everything is torn down at the end. Pass -topology nat for the 1:1 NAT
# (public cloud) layout, -keep to stay up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
go run ./cmd/overlayd-demo "$@"
