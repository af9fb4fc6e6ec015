#!/usr/bin/env bash
# Launch a training command locally or through Slurm, with torchrun when >1 process.
#   utils/launch.sh [--launcher local|slurm] [--ngpu N] [--nnodes M] [--slurm_opts "..."] -- python -m ...
# local, ngpu<=1, 1 node: runs the command as is (CPU or one GPU).
# local, ngpu>1: torchrun --standalone with one process per GPU.
# slurm: srun starts one torchrun per node; rendezvous on the first node of the job.
set -euo pipefail
# Defaults come from the environment (a recipe's cmd.sh exports them).
launcher=${launcher:-local}; ngpu=${ngpu:-0}; nnodes=${nnodes:-1}; slurm_opts=${slurm_opts:-}; port=${port:-29500}
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --launcher) launcher=$2 ;;
    --ngpu) ngpu=$2 ;;
    --nnodes) nnodes=$2 ;;
    --slurm_opts) slurm_opts=$2 ;;
    --port) port=$2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
[ "${1:-}" = "--" ] || { echo "$0: expected -- before the command" >&2; exit 1; }
shift
case "${1:-}" in *python*) ;; *) echo "$0: command must be 'python -m module ...'" >&2; exit 1 ;; esac
python_bin=$1
[ "${2:-}" = -m ] || { echo "$0: command must be 'python -m module ...'" >&2; exit 1; }
module=$3; shift 3
nproc=$(( ngpu > 1 ? ngpu : 1 ))

case "$launcher" in
  local)
    if [ "$nnodes" -gt 1 ]; then echo "$0: --nnodes > 1 needs --launcher slurm" >&2; exit 1; fi
    if [ "$nproc" -le 1 ]; then exec "$python_bin" -m "$module" "$@"; fi
    exec "$python_bin" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m "$module" "$@" ;;
  slurm)
    gres=""; [ "$ngpu" -gt 0 ] && gres="--gres=gpu:$ngpu"
    # shellcheck disable=SC2086
    exec srun --nodes "$nnodes" --ntasks-per-node 1 $gres $slurm_opts bash -c '
      head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
      exec "$3" -m torch.distributed.run --nnodes "$0" --nproc_per_node "$1" --rdzv_id "$SLURM_JOB_ID" \
        --rdzv_backend c10d --rdzv_endpoint "$head:$2" -m "${@:4}"' \
      "$nnodes" "$nproc" "$port" "$python_bin" "$module" "$@" ;;
  *) echo "$0: unknown launcher $launcher (local or slurm)" >&2; exit 1 ;;
esac
