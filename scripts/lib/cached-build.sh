# Sourced by the scripts that build a real program the tests and benchmarks
# run next to overlayd (scripts/flanneld.sh, scripts/kube-apiserver.sh),
# from a separate module under test/, so that its dependencies are not
# overlayd's.
#
# cached_build NAME MOD OUT MODULE prints OUT, the cached binary. It is
# rebuilt only when missing or built from another MOD/go.mod or go.sum
# (compared by content, not date: a fresh clone has new dates): then the
# caller's function build runs in MOD with MODULE's version and the path
# to write, and OUT is replaced.
cached_build() {
  local name=$1 mod=$2 out=$3 module=$4 stamp version
  stamp=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -d' ' -f1)
  if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$out"
    return 0
  fi
  version=$(cd "$mod" && go list -m -f '{{.Version}}' "$module")
  echo "building $name $version (cached afterwards in $out)" >&2
  mkdir -p "$(dirname "$out")"
  (cd "$mod" && build "$version" "$out.tmp")
  mv "$out.tmp" "$out"
  echo "$stamp" > "$out.stamp"
  echo "$out"
}
