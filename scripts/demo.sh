#!/usr/bin/env bash
# The main job on the example models: validate them (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
export PATH="$PWD/.venv/bin:$PATH"
modelops validate
