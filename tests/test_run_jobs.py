"""utils/run_jobs.sh: one command as N jobs (JOB substituted), locally or as one Slurm array job."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_JOBS = REPO / "utils" / "run_jobs.sh"

# Stands in for sbatch: records its arguments, then runs the --wrap command once per task of
# --array=<first>-<last> with SLURM_ARRAY_TASK_ID set (as --wait does, it returns afterwards).
SBATCH = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$(dirname "$0")/sbatch.args"
for a in "$@"; do case $a in --array=*) r=${a#--array=} ;; --output=*) out=${a#--output=} ;; esac; done
rc=0
for i in $(seq "${r%-*}" "${r#*-}"); do SLURM_ARRAY_TASK_ID=$i bash -c "${*: -1}" > "${out//%a/$i}" 2>&1 || rc=1; done
exit $rc
"""


def run_jobs(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RUN_JOBS), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env})


def test_every_job_runs_with_its_number_in_the_arguments_and_the_log(tmp_path):
    res = run_jobs("JOB=0:2", "log/w.JOB.log", "--", "bash", "-c", "echo out JOB > file.JOB; echo said JOB",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for n in range(3):
        assert (tmp_path / f"file.{n}").read_text() == f"out {n}\n"
        log = (tmp_path / "log" / f"w.{n}.log").read_text()
        assert f"said {n}\n" in log and log.rstrip().endswith("exit status 0")
    assert not (tmp_path / "file.3").exists() and res.stdout == ""  # job output stays in the logs


def test_a_failed_job_fails_the_run_naming_its_log_and_the_others_finish(tmp_path):
    res = run_jobs("JOB=1:3", "log/w.JOB.log", "--", "bash", "-c", "touch done.JOB; exit $((JOB == 2 ? 7 : 0))",
                   cwd=tmp_path)
    assert res.returncode != 0
    assert "job JOB=2 failed (exit status 7); log: log/w.2.log" in res.stderr
    assert "w.1.log" not in res.stderr and "w.3.log" not in res.stderr
    assert all((tmp_path / f"done.{n}").exists() for n in (1, 2, 3))


def test_a_log_left_by_an_earlier_run_does_not_pass_for_a_job_that_never_ran(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "w.2.log").write_text("# ended 2026-01-01 00:00:00, exit status 0\n")
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.parent.mkdir()
    sbatch.write_text("#!/bin/sh\nexit 1\n")  # the submission fails: no job runs
    sbatch.chmod(0o755)
    res = run_jobs("JOB=1:2", "log/w.JOB.log", "--", "true", cwd=tmp_path, launcher="slurm",
                   PATH=f"{sbatch.parent}:{os.environ['PATH']}")
    assert res.returncode != 0
    assert "job JOB=1 did not finish" in res.stderr and "job JOB=2 did not finish" in res.stderr


def test_jobs_need_their_own_logs(tmp_path):
    res = run_jobs("JOB=1:2", "log/w.log", "--", "true", cwd=tmp_path)
    assert res.returncode != 0 and "put JOB in its path" in res.stderr
    assert run_jobs("JOB=1:1", "log/w.log", "--", "true", cwd=tmp_path).returncode == 0


def test_slurm_runs_one_array_job_with_the_recipe_options(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    res = run_jobs("JOB=1:3", "log dir/w.JOB.log", "--", "bash", "-c", "echo 'a b' JOB > out.JOB; exit $((JOB == 3))",
                   cwd=tmp_path, launcher="slurm", slurm_opts="--time=1:00:00 --mem=2G",
                   PATH=f"{bin_dir}:{os.environ['PATH']}")
    args = (bin_dir / "sbatch.args").read_text().splitlines()
    assert args[:2] == ["--array=1-3", "--wait"] and "--time=1:00:00" in args and "--mem=2G" in args
    assert [(tmp_path / f"out.{n}").read_text() for n in (1, 2, 3)] == [f"a b {n}\n" for n in (1, 2, 3)]
    assert (tmp_path / "log dir" / "w.1.log").read_text().rstrip().endswith("exit status 0")
    assert res.returncode != 0 and "job JOB=3 failed (exit status 1); log: log dir/w.3.log" in res.stderr
    assert "w.1.log" not in res.stderr
