# How training stages are launched (read by utils/launch.sh from the environment).
# local: this machine (torchrun when ngpu > 1); slurm: srun starts one torchrun per
# node (set nnodes, ngpu and slurm_opts).
# utils/run_jobs.sh (feature and label dumping in nj jobs) reads launcher and slurm_opts
# too: local runs the jobs here, slurm as one array job.
export launcher=local
export ngpu=0          # GPUs per node; 0 = CPU
export nnodes=1
export slurm_opts="--time=72:00:00"
train_cmd=utils/launch.sh
