"""`modelops changed`: which models a git change touches, for a CI matrix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.manifest.model import MANIFEST
from modelops.workspace import MODELS_DIR

# A change under these touches every model: they shape how every model is built and served.
PLATFORM_PATHS = ("templates/", "scripts/", "pyproject.toml")


def _paths(output: bytes) -> set[str]:
    """The paths of git's NUL-separated output (`-z`: never quoted, whatever the name holds)."""
    return {os.fsdecode(path) for path in output.split(b"\0") if path}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    except FileNotFoundError:
        raise ModelopsError("git is not installed", hint="install git") from None


def changed_files(root: Path, base: str) -> list[str]:
    """Files that differ between the merge base of `base` and HEAD, and the working tree."""
    if base.startswith("-"):
        raise ModelopsError(f"{base!r} is not a git ref", field="--base",
                            hint="pass a branch, tag or commit, e.g. --base origin/main")
    if _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() != b"true":
        raise ModelopsError(f"not a git repository: {root}", hint="run modelops changed in a git clone")
    done = _git(root, "diff", "-z", "--name-only", "--relative", "--no-renames", "--merge-base", "--end-of-options",
                base, "--")
    if done.returncode != 0:
        raise ModelopsError(f"git cannot compare with {base!r}: {os.fsdecode(done.stderr).strip()[:300]}",
                            hint="fetch the base first, e.g. git fetch origin main, and pass --base origin/main")
    untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard").stdout
    return sorted(_paths(done.stdout) | _paths(untracked))


def changed(root: Path, base: str) -> dict:
    """{"models": touched models that exist, "deleted": model folders removed, "all": platform changed}."""
    files = changed_files(root, base)
    existing = sorted(p.parent.name for p in (root / MODELS_DIR).glob(f"*/{MANIFEST}"))
    platform = any(f.startswith(PLATFORM_PATHS) for f in files)
    touched = {parts[1] for f in files if len(parts := f.split("/")) > 2 and parts[0] == MODELS_DIR}
    models = existing if platform else sorted(touched & set(existing))
    return {"models": models, "deleted": sorted(touched - set(existing)), "all": platform}
