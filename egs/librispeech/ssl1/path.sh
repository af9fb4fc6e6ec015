# Put the repository's virtual environment first on PATH (created by `make venv`).
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
[ -x "$MAIN_ROOT/.venv/bin/python" ] && export PATH="$MAIN_ROOT/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
