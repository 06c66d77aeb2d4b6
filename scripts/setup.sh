#!/usr/bin/env bash
# Create .venv with modelops and its development tools, locked with hashes (requirements.lock); with --system,
# also install the Debian packages listed in scripts/apt-packages.txt (Docker engine, registry, PostgreSQL, ...)
# when missing.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--system" ]; then
  missing=()
  while read -r package command _; do
    case "$package" in ''|'#'*) continue ;; esac
    # an optional second word names a command that, when already on PATH, makes the package unneeded
    case "$command" in ''|'#'*) ;; *) command -v "$command" >/dev/null && continue ;; esac
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done < scripts/apt-packages.txt
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Exactly the files of requirements.lock (scripts/lock.sh writes it from pyproject.toml), each checked against
# its sha256; then modelops itself, editable, built without isolation by the locked setuptools. The stamp holds
# the digests of what was installed from, so that only a change of their contents installs again.
stamp=.venv/.modelops-installed
installed_from=$(sha256sum requirements.lock pyproject.toml)
if [ "$(cat "$stamp" 2>/dev/null)" != "$installed_from" ]; then
  echo "installing modelops and its development tools (requirements.lock) into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$installed_from" >"$stamp"
fi

# KServe's client, which tests/runner/test_v2_clients.py drives, requires an older pandas than .venv
# has: it gets a venv of its own.
clients=tests/runner/clients-requirements.txt
if [ ! -x .venv-clients/bin/python ]; then
  "$python" -m venv .venv-clients
fi
stamp=.venv-clients/.modelops-installed
if [ ! -f "$stamp" ] || [ "$clients" -nt "$stamp" ]; then
  echo "installing KServe's client into .venv-clients"
  .venv-clients/bin/python -m pip install --quiet --disable-pip-version-check -r "$clients"
  touch "$stamp"
fi

# With --system, like the other test services: Azurite, Microsoft's Azure Storage emulator (npm), which
# tests/storage runs as the Azure Blob store; installed into .tools/azurite (gitignored) unless there.
azurite=azurite@3.35.0
if [ "${1:-}" = "--system" ] && command -v npm >/dev/null \
    && [ "$(cat .tools/azurite/.version 2>/dev/null)" != "$azurite" ]; then
  echo "installing $azurite into .tools/azurite"
  rm -rf .tools/azurite
  npm install --prefix .tools/azurite --no-audit --no-fund --silent "$azurite"
  echo "$azurite" > .tools/azurite/.version
fi
