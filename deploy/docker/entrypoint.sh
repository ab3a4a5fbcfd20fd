#!/bin/sh
# overlayd's image entrypoint: runs overlayd with the iptables backend the
# host already uses, as kube-proxy's image does (its iptables-wrapper), so
# that overlayd's rules land next to kube-proxy's and the host firewall's.
#
# The choice, in order:
#   1. OVERLAYD_IPTABLES_MODE=legacy|nft, when set;
#   2. the KUBE-IPTABLES-HINT chain that the kubelet creates in the mangle
#      table of the backend it uses;
#   3. whichever backend holds more rules (iptables-legacy-save vs
#      iptables-nft-save, IPv4 and IPv6); nft on a tie (a fresh host).
# Legacy puts the legacy tools first in PATH; the nft tools are the image's
# default. Everything after the entrypoint goes to overlayd unchanged.
set -eu

bin=${OVERLAYD_BIN:-/usr/local/bin/overlayd}
legacy_dir=${OVERLAYD_LEGACY_DIR:-/usr/local/lib/overlayd/iptables-legacy}

has_hint() {
  "$1" -t mangle 2>/dev/null | grep -q '^:KUBE-IPTABLES-HINT' || \
    "$2" -t mangle 2>/dev/null | grep -q '^:KUBE-IPTABLES-HINT'
}

count_rules() {
  { "$1" 2>/dev/null || true; "$2" 2>/dev/null || true; } | grep -c '^-' || true
}

mode=${OVERLAYD_IPTABLES_MODE:-}
if [ -z "$mode" ]; then
  if has_hint iptables-nft-save ip6tables-nft-save; then
    mode=nft
  elif has_hint iptables-legacy-save ip6tables-legacy-save; then
    mode=legacy
  else
    legacy=$(count_rules iptables-legacy-save ip6tables-legacy-save)
    nft=$(count_rules iptables-nft-save ip6tables-nft-save)
    if [ "$legacy" -gt "$nft" ]; then mode=legacy; else mode=nft; fi
  fi
fi

case "$mode" in
  legacy) PATH="$legacy_dir:$PATH" ;;
  nft) ;;
  *) echo "overlayd entrypoint: OVERLAYD_IPTABLES_MODE=$mode: want legacy or nft" >&2; exit 2 ;;
esac
export PATH
echo "overlayd entrypoint: iptables mode $mode" >&2
exec "$bin" "$@"
