"""Training: typed config, schedulers, checkpoints, DDP helpers and the loop (``trainer.train``)."""
