"""utils/launch.sh: local runs, torchrun for several GPUs, the Slurm command line, bad commands."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "utils" / "launch.sh"


def launch(*args: str, path_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = None if path_dir is None else {**os.environ, "PATH": f"{path_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(LAUNCH), *args], capture_output=True, text=True, env=env)


def test_local_single_process_runs_the_module_as_is():
    res = launch("--", sys.executable, "-m", "json.tool", "--help")
    assert res.returncode == 0 and "json.tool" in res.stdout


def test_command_must_be_python_dash_m():
    res = launch("--", "bash", "-c", "true")
    assert res.returncode != 0 and "python -m module" in res.stderr
    res = launch("--launcher", "local", "--nnodes", "2", "--", sys.executable, "-m", "json.tool")
    assert res.returncode != 0 and "needs --launcher slurm" in res.stderr


def test_slurm_starts_one_torchrun_per_node(tmp_path):
    fake = tmp_path / "srun"  # prints what it was asked to run instead of running it
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" > {tmp_path}/argv\n')
    fake.chmod(0o755)
    res = launch("--launcher", "slurm", "--ngpu", "4", "--nnodes", "2", "--", sys.executable, "-m",
                 "speechssl2.bin.train", "--config", "x.yaml", path_dir=tmp_path)
    assert res.returncode == 0, res.stderr
    args = (tmp_path / "argv").read_text().split("\0")[:-1]
    assert args[:5] == ["--nodes", "2", "--ntasks-per-node", "1", "--gres=gpu:4"]
    script = next(a for a in args if "torch.distributed.run" in a)
    assert "--rdzv_backend c10d" in script and '--nproc_per_node "$1"' in script
    assert args[-7:] == ["2", "4", "29500", sys.executable, "speechssl2.bin.train", "--config", "x.yaml"]
