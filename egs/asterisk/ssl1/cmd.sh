# How training stages are launched. local: this machine (torchrun when ngpu > 1);
# slurm: srun starts one torchrun per node (set nnodes, ngpu and slurm_opts).
launcher=local
ngpu=0          # GPUs per node; 0 = CPU
nnodes=1
slurm_opts="--time=72:00:00"
train_cmd() { utils/launch.sh --launcher "$launcher" --ngpu "$ngpu" --nnodes "$nnodes" --slurm_opts "$slurm_opts" -- "$@"; }
