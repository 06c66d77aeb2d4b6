"""The git facts a command needs: the commit checked out, the files a change touches, and the history of a
file (the commits that changed it and its content in each)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import ModelopsError

UNKNOWN = "unknown"


def _git(root: Path, *args: str, timeout: float | None = None, input: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False, timeout=timeout,
                              input=input)
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


@dataclass(frozen=True)
class Commit:
    """A commit that changed one file: who, when (committer date, ISO 8601), and the file's path in it."""

    sha: str
    author: str
    email: str
    date: str
    subject: str
    path: str  # relative to the top of the repository


def file_log(root: Path, path: str) -> list[Commit]:
    """The commits of the branch checked out (its first parents: a merged pull request is its merge commit)
    that changed `path` (relative to `root`), oldest first, following renames."""
    if _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() != b"true":
        raise ModelopsError(f"not a git repository: {root}", hint="history reads the commits: run it in a git clone")
    if _git(root, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise ModelopsError(f"the git repository at {root} has no commits yet", hint="commit the models first")
    done = _git(root, "log", "--first-parent", "--follow", "-z", "--name-only",
                "--format=%x1e%H%x1f%an%x1f%ae%x1f%cI%x1f%s", "--", path, timeout=120)
    if done.returncode != 0:
        raise ModelopsError(f"git log failed: {os.fsdecode(done.stderr).strip()[:300]}")
    commits = []
    for record in done.stdout.split(b"\x1e"):
        header, _, names = record.partition(b"\0")
        fields = header.decode("utf-8", "replace").split("\x1f")
        if len(fields) == 5:
            changed = [os.fsdecode(n) for n in names.split(b"\0") if n.strip(b"\n")]
            commits.append(Commit(*fields, path=changed[0].lstrip("\n") if changed else path))
    return commits[::-1]


def shallow(root: Path) -> bool:
    """Whether the clone at `root` holds only part of the history (CI's `fetch-depth: 1`)."""
    return _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"


def blobs(root: Path, specs: list[str]) -> list[bytes | None]:
    """The content of each `<commit>:<path>` (None where the commit has no such file), read by one git."""
    if not specs:
        return []
    done = _git(root, "cat-file", "--batch", input="".join(f"{spec}\n" for spec in specs).encode(), timeout=120)
    out, at = done.stdout, 0
    found: list[bytes | None] = []
    for _ in specs:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            found.append(out[end + 1:end + 1 + size])
            at = end + 1 + size + 1
        else:  # "<spec> missing", or not a file
            found.append(None)
            at = end + 1
    return found
