"""speechssl2.cli: --help generated from the config dataclasses; user errors as one line."""
from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import speechssl2.bin
from speechssl2.cli import config_fields, field_docs, parse_stage, run_main
from speechssl2.config import ConfigError
from speechssl2.registry import RegistryError
from speechssl2.typecheck import ConfigTypeError

REPO = Path(__file__).resolve().parents[1]
NO_CONFIG = {"average_checkpoints", "convert", "list"}  # positional-argument tools without a config dataclass
STAGES = sorted(m.name for m in pkgutil.iter_modules(speechssl2.bin.__path__) if m.name not in NO_CONFIG)


@dataclass
class Optim:
    lr: float = 5e-4  # peak learning rate
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])  # Adam betas


@dataclass
class Toy:
    cuts: str  # input manifest
    optim: Optim = field(default_factory=Optim)
    scheduler: Dict[str, Any] = field(
        default_factory=lambda: {"name": "constant"},  # a spec:
    )  # lr multiplier
    note: Optional[str] = None
    # a comment on its own line documents nothing
    seed: int = 1  # seeds everything


@dataclass
class MoreOptim(Optim):
    eps: float = 1e-6  # Adam epsilon


def test_config_fields_are_dotted_typed_with_defaults_and_trailing_comments():
    assert [f.line() for f in config_fields(Toy)] == [
        "cuts (str, required): input manifest",
        "optim.lr (float, default 0.0005): peak learning rate",
        "optim.betas (List[float], default [0.9, 0.98]): Adam betas",
        "scheduler (Dict[str, Any], default {name: constant}): a spec: lr multiplier",
        "note (Optional[str], default null): ",
        "seed (int, default 1): seeds everything",
    ]


def test_field_docs_include_inherited_fields():
    assert field_docs(MoreOptim) == {"lr": "peak learning rate", "betas": "Adam betas", "eps": "Adam epsilon"}


def _add_force(parser):
    parser.add_argument("--force", action="store_true")


def test_parse_stage_reads_config_overrides_and_extra_flags(tmp_path):
    conf = tmp_path / "toy.yaml"
    conf.write_text("cuts: a.jsonl.gz\noptim: {lr: 1.0e-3}\n")
    argv = ["--config", str(conf), "--set", "seed=7", "--force"]
    cfg, args = parse_stage(Toy, "doc", argv, stage="toy", add_arguments=_add_force)
    assert (cfg.cuts, cfg.optim.lr, cfg.seed, args.force) == ("a.jsonl.gz", 1e-3, 7, True)
    cfg, args = parse_stage(Toy, "doc", ["--set", "cuts=b"], stage="toy", add_arguments=_add_force)
    assert (cfg.cuts, cfg.optim.lr, args.force) == ("b", 5e-4, False)


def test_missing_or_malformed_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml not found"):
        parse_stage(Toy, "doc", ["--config", str(tmp_path / "nope.yaml")], stage="toy")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cuts: [a\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        parse_stage(Toy, "doc", ["--config", str(bad)], stage="toy")


@pytest.mark.parametrize("error", [
    ConfigError("optim.lrr: unknown field; valid fields of Optim: lr, betas"),
    ConfigTypeError("optim.lr: expected float, got str 'fast'"),
    RegistryError("unknown models key 'nosuch'; valid keys: ctc, ssl"),
])
def test_run_main_prints_user_errors_as_one_line_and_exits_2(error, capsys):
    def main():
        raise error

    with pytest.raises(SystemExit) as done:
        run_main(main)
    assert done.value.code == 2
    assert capsys.readouterr().err == f"error: {error}\n"


def test_run_main_passes_results_and_other_exceptions_through():
    assert run_main(lambda: 7) == 7

    def broken():
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError, match="a bug"):
        run_main(broken)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_help_documents_every_config_field(stage, capsys):
    module = importlib.import_module(f"speechssl2.bin.{stage}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m speechssl2.bin.{stage} ")
    header = re.search(r"^config fields of (\S+) ", out, re.M)
    assert header, f"{stage}: --help lists no config fields"
    module_name, _, class_name = header.group(1).rpartition(".")
    fields = list(config_fields(getattr(importlib.import_module(module_name), class_name)))
    assert fields
    for f in fields:
        assert f.doc, f"{stage}: config field {f.name} has no trailing # comment to document it"
        assert f"\n  {f.line()}\n" in out


def test_config_less_tools_are_still_there():
    assert NO_CONFIG <= {m.name for m in pkgutil.iter_modules(speechssl2.bin.__path__)}


def _stage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speechssl2.bin.train", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_missing_config_file_exits_2_with_one_error_line(tmp_path):
    res = _stage(tmp_path, "--config", "/nonexistent.yaml")
    assert res.returncode == 2
    assert res.stderr == "error: config file /nonexistent.yaml not found\n"


def test_unknown_registry_key_exits_2_naming_the_valid_keys(tmp_path):
    res = _stage(tmp_path, "--set", "model.name=nosuch", "--set", "data.train=x", "--set", f"exp_dir={tmp_path}")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert errors == [errors[0]] and errors[0].startswith("error: unknown models key 'nosuch'; valid keys: ")
    assert "ctc" in errors[0].split("valid keys: ")[1].split(", ")
