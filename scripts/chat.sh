#!/usr/bin/env bash
# Installs the project if needed, then starts the chat on http://127.0.0.1:7860
# (the index is built from seeds/ on first run). Extra arguments go to `rag serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/rag serve "$@"
