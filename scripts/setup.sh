#!/usr/bin/env bash
# Creates .venv and installs the project (CPU-only torch) with the given extras.
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh test
# Nothing is reinstalled when pyproject.toml, the extras and this script are unchanged
# since the last successful install (a stamp in .venv records them).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.rag-installed
wanted="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-32) extras=${extras}"
if [ -f "$stamp" ] && grep -qxF "$wanted" "$stamp" && .venv/bin/python -c "import rag" 2>/dev/null; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: a bare `torch` requirement resolves to a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet -e .
fi
# The test extras include the base install: a later plain start needs nothing more.
echo "$wanted" > "$stamp"
if [ "$extras" = "test" ]; then
  echo "${wanted% extras=*} extras=" >> "$stamp"
fi
