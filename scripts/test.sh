#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then lints and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
.venv/bin/ruff check scripts tests benchmarks
.venv/bin/python -m pytest "$@"
