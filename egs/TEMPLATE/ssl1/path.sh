# Sourced by every recipe script (egs/*/ssl1/path.sh link here): run this checkout's
# speechssl2 with its virtual environment (created by `make venv`).
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ ! -x "$MAIN_ROOT/.venv/bin/python" ]; then
  echo "${BASH_SOURCE[0]}: no virtual environment at $MAIN_ROOT/.venv: run make venv (in $MAIN_ROOT)" >&2
  exit 1
fi
export PATH="$MAIN_ROOT/.venv/bin:$PATH"
# The checkout first: another speechssl2 on PYTHONPATH or installed elsewhere cannot shadow it.
export PYTHONPATH="$MAIN_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
