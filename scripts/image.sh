#!/usr/bin/env bash
# Builds overlayd's multi-arch container image from the repository's
# Dockerfile with docker buildx (or podman when docker is missing) and, with
# --push, pushes it. The image carries the version and commit (overlayd
# version prints them) and is what both DaemonSets in deploy/kubernetes run
# and install the flannel CNI plugin from.
#
#   scripts/image.sh [--push] [--dry-run] [--engine docker|podman] [--image REPO] [--version TAG] [--platforms LIST]
#
# Defaults: --image ghcr.io/overlayd/overlayd, --version from `git describe
# --tags --always --dirty`, --platforms linux/amd64,linux/arm64,linux/arm/v7,
# linux/ppc64le,linux/s390x. --dry-run prints the commands
# instead of running them (no container engine needed). --engine: docker
# (buildx) when installed, else podman.
set -euo pipefail
cd "$(dirname "$0")/.."

image=ghcr.io/overlayd/overlayd
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
platforms=linux/amd64,linux/arm64,linux/arm/v7,linux/ppc64le,linux/s390x
push=false
dry=false
engine=
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push=true ;;
    --dry-run) dry=true ;;
    --image) image=$2; shift ;;
    --version) version=$2; shift ;;
    --platforms) platforms=$2; shift ;;
    --engine) engine=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
ref="$image:$version"

run() {
  if $dry; then
    printf '%q ' "$@"; echo
  else
    "$@"
  fi
}

if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1; then engine=docker
  elif [ "$engine" = podman ]; then engine=podman
  elif $dry; then engine=docker
  else
    echo "image.sh: neither docker (with buildx) nor podman is installed; --dry-run shows the commands" >&2
    exit 1
  fi
fi

if [ "$engine" = docker ]; then
  # buildx: one build per platform from a single invocation; cross-compiled
  # by the Go stage (FROM --platform=$BUILDPLATFORM), so no emulation for Go.
  out=(--load)
  if $push; then out=(--push); fi
  if ! $push && [[ $platforms == *,* ]]; then
    # A multi-platform image cannot be --load'ed into the local store.
    out=(--output "type=oci,dest=overlayd-$version.oci.tar")
  fi
  run docker buildx build --platform "$platforms" \
    --build-arg VERSION="$version" --build-arg COMMIT="$commit" \
    -t "$ref" "${out[@]}" .
elif [ "$engine" = podman ]; then
  run podman build --platform "$platforms" --manifest "$ref" \
    --build-arg VERSION="$version" --build-arg COMMIT="$commit" .
  if $push; then run podman manifest push --all "$ref" "docker://$ref"; fi
else
  echo "image.sh: --engine $engine: want docker or podman" >&2
  exit 2
fi
echo "image: $ref (version $version, commit $commit, platforms $platforms)" >&2
