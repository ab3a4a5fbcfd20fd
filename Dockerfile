# overlayd container image.
#
#   scripts/image.sh            (multi-arch, docker buildx or podman; --dry-run)
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#     -t ghcr.io/overlayd/overlayd:v0.1.0 .
#
# Run it on a node (the DaemonSet in deploy/kubernetes/overlayd.yaml does the
# same in Kubernetes):
#
#   docker run -d --name overlayd --restart=always --network=host \
#     --cap-add=NET_ADMIN --cap-add=NET_RAW \
#     -v /run/flannel:/run/flannel -v /run/xtables.lock:/run/xtables.lock \
#     --env-file=/etc/default/overlayd ghcr.io/overlayd/overlayd:v0.1.0
#
# Why host networking and those capabilities: overlayd is the node's network
# agent, not an application. Everything it manages lives in the host's network
# namespace: the flannel.<VNI> VXLAN device bound to the node's interface, the
# per-peer neighbour, FDB and route entries, and the FLANNEL-POSTRTG /
# FLANNEL-FWD iptables chains that the node's pods use. So it needs
# --network=host (hostNetwork: true), CAP_NET_ADMIN for netlink, iptables,
# ipset and the ethtool ioctl, and CAP_NET_RAW for iptables. It needs nothing
# more: no --privileged, no other capability, no host PID namespace.

# ---- build: a static, reproducible binary ---------------------------------
# Runs on the build machine's platform and cross-compiles for the target
# (docker buildx build --platform=linux/amd64,linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH
# CGO_ENABLED=0: pure Go, no libc dependency, runs on any base image.
# -trimpath: no build paths in the binary. -s -w: no symbol/debug tables.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/overlayd ./cmd/overlayd

# ---- runtime ----------------------------------------------------------------
# debian:bookworm-slim rather than alpine: Debian's iptables 1.8.9 ships both
# backends with nf_tables as the default, like the hosts it runs on (Debian 11+,
# Ubuntu 20.10+, RHEL 8+), and is the same build the integration tests run
# against. The rules must land in the backend the host uses, or kube-proxy,
# the host firewall and overlayd would each see only part of the rule set.
# The entrypoint (deploy/docker/entrypoint.sh) picks the host's backend at
# start, as kube-proxy's image does: the kubelet's KUBE-IPTABLES-HINT chain,
# else whichever of iptables-legacy-save / iptables-nft-save lists more
# rules; legacy puts /usr/local/lib/overlayd/iptables-legacy first in PATH.
# OVERLAYD_IPTABLES_MODE=legacy|nft overrides it.
FROM debian:bookworm-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="overlayd" \
      org.opencontainers.image.description="Flannel-compatible VXLAN overlay agent (etcd mode)" \
      org.opencontainers.image.source="https://github.com/overlayd/overlayd" \
      org.opencontainers.image.documentation="https://github.com/overlayd/overlayd/blob/main/docs/operations.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ipset iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/local/lib/overlayd/iptables-legacy \
 && for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \
      ln -s /usr/sbin/$t-legacy /usr/local/lib/overlayd/iptables-legacy/$t; \
    done
COPY --from=build /out/overlayd /usr/local/bin/overlayd
COPY deploy/docker/entrypoint.sh /usr/local/bin/overlayd-entrypoint
# Root with NET_ADMIN and NET_RAW (see above); the state it writes is on the
# host (/run/flannel, the kernel), so the root filesystem can be read-only.
USER root
ENTRYPOINT ["/usr/local/bin/overlayd-entrypoint"]
