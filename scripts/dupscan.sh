#!/usr/bin/env bash
# Counts the repeated code of the tree with the `duplicates` scanner (the
# tool library's), with Go import lists passed over.
#
#   scripts/dupscan.sh                 # the whole tree (tracked files)
#   scripts/dupscan.sh test            # only the _test.go files
#   scripts/dupscan.sh prod            # only the other files
#   REV=4859884 scripts/dupscan.sh     # the tree of another commit
#
# Why a scratch copy: the scanner skips import lines, but it recognises only
# the one-line form (`import "fmt"`). Every gofmt'ed Go file lists its imports
# in parentheses, so two files importing six or more of the same packages
# came out as a "pair" (about 150 of 250 on the tree of December 2026). The
# script copies the tracked files to a scratch folder, rewrites each
# parenthesised list there as one-line imports, and scans that copy. The
# repository itself keeps the gofmt form.
#
# MOST (default 200) and SECONDS_MAX (default 300) are passed to the scanner.
set -euo pipefail
cd "$(dirname "$0")/.."
half=${1:-all}
case "$half" in all | prod | test) ;; *)
  echo "usage: $0 [all|prod|test]" >&2
  exit 2
  ;;
esac
rev=${REV:-}
scratch=$(mktemp -d /tmp/dupscan.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# wanted tells whether a tracked path belongs to the half asked for.
wanted() {
  case "$half" in
  prod) [[ $1 != *_test.go ]] ;;
  test) [[ $1 == *_test.go ]] ;;
  *) true ;;
  esac
}

# show prints a tracked file as it is in the working tree, or at $REV.
show() {
  if [ -n "$rev" ]; then git show "$rev:$1"; else cat "$1"; fi
}

# oneline rewrites `import ( ... )` lists as one `import` line per package.
oneline() {
  awk '/^import \($/ { inlist = 1; next }
       inlist && /^\)$/ { inlist = 0; next }
       inlist { if ($0 ~ /^[ \t]*$/) next; sub(/^[ \t]+/, ""); print "import " $0; next }
       { print }'
}

if [ -n "$rev" ]; then files=$(git ls-tree -r --name-only "$rev"); else files=$(git ls-files); fi
while IFS= read -r f; do
  wanted "$f" || continue
  [ -n "$rev" ] || [ -f "$f" ] || continue
  mkdir -p "$scratch/$(dirname "$f")"
  if [[ $f == *.go ]]; then show "$f" | oneline >"$scratch/$f"; else show "$f" >"$scratch/$f"; fi
done <<<"$files"
cd "$scratch"
duplicates --most "${MOST:-200}" --seconds "${SECONDS_MAX:-300}"
