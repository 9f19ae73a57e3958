#!/usr/bin/env bash
# Set up ExposeAnyone on a fresh Debian/Ubuntu machine with Python 3.11:
#   bash scripts/setup.sh          system libraries + .venv with the project and its app extra (".[app]")
#   bash scripts/setup.sh --test   the same with the test extra (".[test]", which includes the app extra),
#                                  plus Chromium and espeak-ng for the tests
# The pins are in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

test_extras=0
[ "${1:-}" = "--test" ] && test_extras=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=$(grep -v '^#' packages.txt | tr '\n' ' ')
[ "$test_extras" = 1 ] && packages="$packages chromium espeak-ng fonts-dejavu-core"
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: the CPU wheel; an unpinned torch may pull a multi-GB CUDA build
.venv/bin/python -m pip install -q torch==2.13.0
if [ "$test_extras" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e ".[app]"
fi
