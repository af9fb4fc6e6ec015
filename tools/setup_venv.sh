#!/usr/bin/env bash
# Create the virtual environment and install speechssl2 with its test extras.
# torch/torchaudio 2.11 come from the registry (CUDA builds; they also run on CPU).
set -euo pipefail
venv=${1:-.venv}
if ! python3 -m venv --help >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev
  else
    echo "python3 with venv is required: apt-get install python3 python3-venv (as root)" >&2
    exit 1
  fi
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip wheel "setuptools<82"
"$venv/bin/python" -m pip install -q -e ".[dev,espnet]"
# espnet without its dependency tree (see setup.py for why); version from setup.py.
espnet=$(sed -n 's/^ESPNET = "\(.*\)"/\1/p' setup.py)
"$venv/bin/python" -m pip install -q --no-deps "$espnet"
# Fail here, not in pytest, when torch and torchaudio do not load together.
"$venv/bin/python" -c "import torchaudio.functional, speechssl2.bin.list"
