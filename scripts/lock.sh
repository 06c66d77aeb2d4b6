#!/usr/bin/env bash
# Regenerate the locked dependencies, with the sha256 of every file, for Linux x86_64 and CPython 3.11:
#   requirements.lock                              the platform: pyproject.toml's dependencies, the dev extra
#                                                  and the build system (scripts/setup.sh installs it)
#   scripts/modelops/runner/requirements.lock      the runner, from requirements.txt beside it (every image)
#   scripts/modelops/images/sbom-tool.lock         the SBOM tool of the images' builder stage, from sbom-tool.txt
# Run it after editing any of those inputs; tests/test_lock.py fails while a lock disagrees with its input.
# With --upgrade, every package moves to the newest version its input allows (otherwise pins are kept).
# It uses uv, pinned in the dev extra (UV=... picks another binary).
set -euo pipefail
cd "$(dirname "$0")/.."

uv=${UV:-.venv/bin/uv}
if [ ! -x "$uv" ] && ! command -v "$uv" >/dev/null; then
  echo "error: $uv not found: run scripts/setup.sh first (uv is in the dev extra), or set UV" >&2
  exit 1
fi
upgrade=()
if [ "${1:-}" = "--upgrade" ]; then upgrade=(--upgrade); fi

compile() {  # compile OUTPUT INPUT... [options]
  local out=$1
  shift
  "$uv" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
    --custom-compile-command scripts/lock.sh "${upgrade[@]}" --output-file "$out" "$@"
}

# The build system's requirements (setup.sh builds the editable install without isolation) and pip itself
# go in the platform lock, so that nothing setup.sh installs escapes the hashes.
python3 -c 'import tomllib; print("\n".join(["pip", *tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]]))' |
  compile requirements.lock pyproject.toml --extra dev -
# The images install only wheels (their builds have no network and no compiler).
compile scripts/modelops/runner/requirements.lock scripts/modelops/runner/requirements.txt --only-binary :all:
compile scripts/modelops/images/sbom-tool.lock scripts/modelops/images/sbom-tool.txt --only-binary :all:
echo "locked: requirements.lock scripts/modelops/runner/requirements.lock scripts/modelops/images/sbom-tool.lock"
