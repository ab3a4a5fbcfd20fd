#!/usr/bin/env bash
# Runs every go test -fuzz target of the module, one after the other, each
# for a bounded time: the config parser, the lease JSON and key parsers and
# the subnet file reader (subnet/fuzz_test.go), and any target added later.
#
#   scripts/fuzz.sh                      # every target, 30s each
#   FUZZTIME=2m scripts/fuzz.sh          # longer (any go test -fuzztime value, e.g. 10000x)
#   scripts/fuzz.sh FuzzParseConfig      # only the targets whose name matches
#
# FUZZ_PARALLEL sets the fuzzing workers (go test -parallel; default: all
# CPUs). A failing input is saved under <package>/testdata/fuzz/<Target>/
# and becomes a regular test case of `go test`; the script stops at the
# first failure and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
filter=${1:-.}
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
  parallel=(-parallel "$FUZZ_PARALLEL")
fi

# "dir target" for every func FuzzXxx(f *testing.F) in a _test.go file.
targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . \
  | sed -E 's#^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*#\1 \2#' \
  | grep -E " .*${filter}" | sort -u || true)
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz target matches '$filter'" >&2
  exit 1
fi

count=$(printf '%s\n' "$targets" | wc -l)
echo "fuzzing $count targets for $fuzztime each"
while read -r dir target; do
  echo "== ./$dir $target"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "${parallel[@]}" "./$dir"
done <<< "$targets"
echo "all $count fuzz targets ran $fuzztime without a failure"
