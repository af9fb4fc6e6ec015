# How training stages are launched (read by utils/launch.sh from the environment).
# local: this machine (torchrun when ngpu > 1); slurm: srun starts one torchrun per
# node (set nnodes, ngpu and slurm_opts). Batches are set in seconds of audio per update
# (trainer.target_batch_seconds), so any ngpu x nnodes reproduces the paper's batch:
# gradient accumulation makes up for fewer GPUs.
# utils/run_jobs.sh (feature and label dumping in nj jobs) reads launcher and slurm_opts
# too: local runs the jobs here, slurm as one array job.
export launcher=local
export ngpu=8          # GPUs per node; 0 = CPU
export nnodes=1
export slurm_opts="--time=72:00:00"
train_cmd=utils/launch.sh
