#!/usr/bin/env bash
# Run a recipe stage unless it already ran with the same command and the same inputs.
#   utils/run_stage.sh <marker_dir> <name> "<input files or dirs>" -- command args...
# The stage's fingerprint is a hash of the command line and of its inputs (file
# contents; for directories, their file names, sizes and mtimes). A matching
# fingerprint in <marker_dir>/<name>.done means done: skip. A changed config or
# input reruns the stage. The marker is written only after the command succeeds,
# so a stage killed half-way runs again (and the Python stage resumes itself).
# A command that exits 75 has skipped its work on purpose (a missing optional tool):
# the stage counts as passed but is not marked done, so it runs once the tool is there.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 marker_dir name \"inputs\" -- command..." >&2; exit 1; }
marker_dir=$1; name=$2; inputs=$3; shift 3
[ "$1" = "--" ] || { echo "$0: expected -- before the command" >&2; exit 1; }
shift

fingerprint() {
  {
    printf '%s\n' "$*"
    for p in $inputs; do
      if [ -d "$p" ]; then
        find -L "$p" -type f -printf '%P %s %T@\n' | sort
      elif [ -e "$p" ]; then
        sha1sum "$p"
      else
        echo "missing $p"
      fi
    done
  } | sha1sum | cut -d' ' -f1
}

mkdir -p "$marker_dir"
marker=$marker_dir/$name.done
fp=$(fingerprint "$@")
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$fp" ]; then
  echo "[$name] up to date, skipping (delete $marker to force)"
  exit 0
fi
echo "[$name] running: $*"
rc=0
"$@" || rc=$?
if [ "$rc" = 75 ]; then
  echo "[$name] skipped by the stage itself: not marked done, it runs again next time"
  exit 0
fi
[ "$rc" = 0 ] || exit "$rc"
echo "$fp" > "$marker.tmp" && mv "$marker.tmp" "$marker"
