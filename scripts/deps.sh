#!/usr/bin/env bash
# Installs what overlayd's tests, demo and benchmarks need, only when missing:
# iproute2 (ip, bridge), iptables, ipset, nftables (the nft binary: the
# nftables-mode tests read and damage rules with it; overlayd never runs it), etcd (Debian's etcd-server 3.4,
# which still has the v2 API), tcpdump (capture tests), iperf3 (bench), gcc
# (the real flanneld, built by scripts/flanneld.sh, has cgo files),
# containernetworking-plugins (bridge, host-local, portmap, loopback in
# /usr/lib/cni: the lab's pods are made by the real CNI chain).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip       || need+=(iproute2)
have bridge   || need+=(iproute2)
have iptables || need+=(iptables)
have ipset    || need+=(ipset)
have nft      || need+=(nftables)
have etcd     || need+=(etcd-server)
have etcdctl  || need+=(etcd-client)
have tcpdump  || need+=(tcpdump)
have iperf3   || need+=(iperf3)
have ping     || need+=(iputils-ping)
have gcc      || need+=(gcc libc6-dev) # cgo in the real flanneld (scripts/flanneld.sh)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/loopback ] \
  || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
# Debian's etcd-server package may start a system etcd; the tests start
# their own on random loopback ports and do not need it.
