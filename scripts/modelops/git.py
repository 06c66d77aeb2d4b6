"""The git facts a command needs: the commit checked out, and the files a change touches."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from modelops.errors import ModelopsError

UNKNOWN = "unknown"


def _git(root: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False, timeout=timeout)
    except FileNotFoundError:
        raise ModelopsError("git is not installed", hint="install git") from None


def commit(root: Path) -> str:
    """HEAD's commit of the repository at `root`, or `unknown` outside git (or without git)."""
    try:
        done = _git(root, "rev-parse", "HEAD", timeout=30)
    except (ModelopsError, subprocess.TimeoutExpired):
        return UNKNOWN
    sha = done.stdout.decode().strip()
    return sha if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else UNKNOWN


def last_change(root: Path, path: Path) -> tuple[str, int] | None:
    """The last commit that changed `path` and its time (Unix seconds): ("", now) while `path` has changes
    not committed yet; None outside git or if no commit has it."""
    try:
        if _git(root, "status", "--porcelain", "-z", "--", str(path), timeout=30).stdout:
            return "", int(time.time())
        done = _git(root, "log", "-1", "--format=%H %ct", "--", str(path), timeout=30)
    except (ModelopsError, subprocess.TimeoutExpired):
        return None
    found = re.fullmatch(r"([0-9a-f]{40,64}) ([0-9]+)", done.stdout.decode().strip())
    return (found[1], int(found[2])) if done.returncode == 0 and found else None


def _paths(output: bytes) -> set[str]:
    """The paths of git's NUL-separated output (`-z`: never quoted, whatever the name holds)."""
    return {os.fsdecode(path) for path in output.split(b"\0") if path}


def changed_files(root: Path, base: str) -> list[str]:
    """Files that differ between the merge base of `base` and HEAD, and the working tree (relative to `root`)."""
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
