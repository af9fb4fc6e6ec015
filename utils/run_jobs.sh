#!/usr/bin/env bash
# Run one command as parallel jobs, Kaldi style:
#   utils/run_jobs.sh [--launcher local|slurm] [--slurm_opts "..."] JOB=1:N <log with JOB> -- command args...
# In the log path and in every argument, JOB becomes the job's number (JOB=0:3 numbers them
# 0 to 3). Each job keeps its output in its own log, with the command and exit status as
# utils/run_stage.sh writes them. local: the jobs run as background processes here; slurm:
# as one array job (sbatch --array=1-N --wait $slurm_opts). Waits for every job, then fails
# naming the log of each job that failed. launcher and slurm_opts default to the
# environment (a recipe's cmd.sh exports them).
set -euo pipefail
launcher=${launcher:-local}; slurm_opts=${slurm_opts:-}; task=false
while [ $# -gt 0 ]; do
  case "$1" in
    --launcher) launcher=$2; shift 2 ;;
    --slurm_opts) slurm_opts=$2; shift 2 ;;
    --task) task=true; shift ;;  # internal: one job of the Slurm array ($SLURM_ARRAY_TASK_ID)
    *) break ;;
  esac
done
die() { echo "$0: $*" >&2; exit 1; }
[ $# -ge 4 ] && [ "$3" = "--" ] || die "usage: $0 [--launcher local|slurm] [--slurm_opts \"...\"] JOB=1:N <log> -- command..."
[[ $1 =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]] || die "job range $1: expected JOB=<first>:<last>"
var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
range=$1 log=$2
shift 3
cmd=("$@")
[ "$first" -le "$last" ] || die "job range $range is empty"
[ "$first" = "$last" ] || [[ $log == *"$var"* ]] || die "log $log: every job needs its own log; put $var in its path"
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

job_log() { echo "${log//"$var"/$1}"; }
run_job() {  # the command of job $1, logged; its status is the command's (75 passes: see run_stage.sh)
  local arg args=()
  for arg in "${cmd[@]}"; do args+=("${arg//"$var"/$1}"); done
  "$utils/run_stage.sh" "$(job_log "$1")" -- "${args[@]}" > /dev/null 2>&1
}
if [ "$task" = true ]; then
  run_job "${SLURM_ARRAY_TASK_ID:?--task runs inside a Slurm array job}"
  exit
fi

for n in $(seq "$first" "$last"); do  # a log left by an earlier run must not pass for this one
  rm -f "$(job_log "$n")"
  mkdir -p "$(dirname "$(job_log "$n")")"
done
case "$launcher" in
  local)
    set -m  # each job in its own process group: an interrupt stops the jobs' whole process trees
    pids=()
    trap 'for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null; done; exit 130' INT TERM
    # The jobs share this machine: split its threads between them instead of each taking all.
    threads=$(( ${OMP_NUM_THREADS:-$(nproc)} / (last - first + 1) ))
    export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 ))
    for n in $(seq "$first" "$last"); do run_job "$n" & pids+=($!); done
    wait "${pids[@]}" || true ;;  # every job's status is in its log
  slurm)
    # The array's tasks run this script again (--task); Slurm's own output (e.g. a task killed
    # at its time limit) goes beside each log.
    # shellcheck disable=SC2086
    sbatch --array="$first-$last" --wait --job-name="$(basename "$log" .log)" \
      --output="$(job_log %a).slurm" $slurm_opts \
      --wrap "$(printf '%q ' "$utils/run_jobs.sh" --task "$range" "$log" -- "${cmd[@]}")" > /dev/null || true ;;
  *) die "unknown launcher $launcher (local or slurm)" ;;
esac

failed=0
for n in $(seq "$first" "$last"); do
  status=$(tail -n 1 "$(job_log "$n")" 2>/dev/null | sed -n 's/^# ended .*, exit status \([0-9]*\)$/\1/p') || true
  case "$status" in
    0|75) ;;
    "") echo "$0: job $var=$n did not finish (no exit status); log: $(job_log "$n")" >&2; failed=$((failed + 1)) ;;
    *) echo "$0: job $var=$n failed (exit status $status); log: $(job_log "$n")" >&2; failed=$((failed + 1)) ;;
  esac
done
[ "$failed" = 0 ] || die "$failed of $((last - first + 1)) jobs failed: ${cmd[*]}"
