#!/usr/bin/env bash
# Run one recipe stage: show its output on the terminal and keep it in a log file.
#   utils/run_stage.sh <log_file> -- command args...
# Whether there is work to do is the stage's own decision: every speechssl2.bin stage
# keeps a stamp of its resolved config, the contents of every file it reads and every
# file it wrote (speechssl2/stage.py), and skips itself only when none changed. So this
# script holds no list of inputs and no markers.
# A command that exits 75 skipped its work on purpose (a missing optional tool, e.g.
# KenLM): the recipe carries on, and the stage does its work once the tool is there.
set -euo pipefail
[ $# -ge 3 ] && [ "$2" = "--" ] || { echo "usage: $0 <log_file> -- command..." >&2; exit 1; }
log=$1
shift 2
mkdir -p "$(dirname "$log")"
{ echo "# $*"; echo "# started $(date '+%F %T') on $(hostname)"; } > "$log"
set +e
"$@" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
set -e
echo "# ended $(date '+%F %T'), exit status $rc" >> "$log"
if [ "$rc" = 75 ]; then
  echo "$(basename "$log" .log): skipped by the stage itself (see $log); it runs once what it needs is there"
  exit 0
fi
[ "$rc" = 0 ] || echo "$(basename "$log" .log) failed (exit status $rc); log: $log" >&2
exit "$rc"
