"""Recipe shell helpers: parse_options.sh --help and the shared path.sh."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parents[1]
PARSE_OPTIONS = REPO / "utils" / "parse_options.sh"
TEMPLATE = REPO / "egs" / "TEMPLATE" / "ssl1"
TEMPLATE_PATH_SH = TEMPLATE / "path.sh"
RECIPES = sorted(p.parent for p in REPO.glob("egs/*/ssl1/run.sh") if p.parent != TEMPLATE)  # runnable in place
OPTION = re.compile(r"^([a-z_][a-z0-9_]*)=")
HELP_LINE = re.compile(r"^  --([a-z_][a-z0-9_]*) \((.*)\): (.*)$")


def sh(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def help_options(res: subprocess.CompletedProcess) -> Dict[str, str]:
    """``--name -> help`` from a --help output, which must be header lines then option lines."""
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Usage: ") and lines[1].startswith("Options")
    matches = [HELP_LINE.match(line) for line in lines[2:]]
    assert all(matches), res.stdout
    return {m.group(1): m.group(3) for m in matches}


def option_lines(script: Path) -> List[str]:
    """The lines assigning a variable before the line that sources utils/parse_options.sh."""
    lines = script.read_text().splitlines()
    end = lines.index(". utils/parse_options.sh")
    return [line for line in lines[:end] if OPTION.match(line)]


def test_help_lists_only_the_options_above_parse_options_with_their_comments(tmp_path):
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "s.sh").write_text(
        'set -euo pipefail\ncd "$(dirname "$0")"\n'
        "stage=0            # first stage to run\n"
        'sets="a b"  # sets to decode, e.g. a#b\n'
        "plain=1\n"
        "stage=5  # assigned twice: listed once\n"
        f". {PARSE_OPTIONS}\n"
        "data=$stage/data  # set after parsing: not an option\n"
    )
    res = sh("bash recipe/s.sh --stage 3 --help", tmp_path)  # a relative path, then the script cd's
    assert res.stdout.splitlines()[2:] == [
        "  --stage (3): first stage to run",
        "  --sets (a b): sets to decode, e.g. a#b",
        "  --plain (1): ",
    ]


@pytest.mark.parametrize("script", [d / "run.sh" for d in RECIPES] + [RECIPES[0] / "ssl.sh"],
                         ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_recipe_help_lists_exactly_its_options_each_with_help(script):
    options = help_options(sh(f"./{script.name} --help", script.parent))
    assert list(options) == [OPTION.match(line).group(1) for line in option_lines(script)]
    assert all(options.values()), {name: h for name, h in options.items() if not h}


@pytest.mark.parametrize("script", [p for p in sorted(TEMPLATE.glob("*.sh")) if "\n. utils/parse_options.sh\n" in p.read_text()],
                         ids=lambda p: p.name)
def test_template_options_have_comments(script):
    """Template scripts do not run in place (no cmd.sh, utils/): every option line has its help comment."""
    lines = option_lines(script)
    assert lines and not [line for line in lines if not re.search(r"\s#\s*\S", line)]


def test_recipes_share_the_template_path_sh():
    assert RECIPES
    for recipe in RECIPES:
        assert (recipe / "path.sh").resolve() == TEMPLATE_PATH_SH


@pytest.fixture
def fake_checkout(tmp_path) -> Path:
    """``<root>/egs/demo/ssl1/path.sh`` linked to a copy of the template, as in the repository; no venv."""
    template = tmp_path / "egs" / "TEMPLATE" / "ssl1"
    template.mkdir(parents=True)
    shutil.copy(TEMPLATE_PATH_SH, template / "path.sh")
    recipe = tmp_path / "egs" / "demo" / "ssl1"
    recipe.mkdir(parents=True)
    (recipe / "path.sh").symlink_to("../../TEMPLATE/ssl1/path.sh")
    return tmp_path


def test_path_sh_stops_with_one_line_without_a_venv(fake_checkout):
    res = sh(". ./path.sh; echo still running", fake_checkout / "egs" / "demo" / "ssl1")
    assert res.returncode != 0 and "still running" not in res.stdout
    assert res.stderr == (f"./path.sh: no virtual environment at {fake_checkout}/.venv: "
                          f"run make venv (in {fake_checkout})\n")


def test_path_sh_puts_the_venv_and_the_checkout_first(fake_checkout):
    python = fake_checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    res = sh('. ./path.sh; echo "$PATH"; echo "$PYTHONPATH"', fake_checkout / "egs" / "demo" / "ssl1",
             PYTHONPATH="/elsewhere")
    path, pythonpath = res.stdout.splitlines()
    assert path.startswith(f"{fake_checkout}/.venv/bin:")
    assert pythonpath == f"{fake_checkout}:/elsewhere"


def test_recipe_python_imports_this_checkout_even_if_another_copy_is_on_pythonpath(tmp_path):
    shadow = tmp_path / "speechssl2"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    find = "import importlib.util; print(importlib.util.find_spec('speechssl2').origin)"
    res = sh(f'. ./path.sh && python -c "{find}"', RECIPES[0], PYTHONPATH=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(REPO / "speechssl2" / "__init__.py")
