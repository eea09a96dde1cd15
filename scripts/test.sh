#!/usr/bin/env bash
# Installs the project with its test tools (and Debian's Chromium for the browser
# tests, when missing), then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
