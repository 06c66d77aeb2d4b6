"""Writing files whole or not at all, with errors that name the path; folders of rendered files (owned by a header)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from modelops.errors import ModelopsError

_ELSEWHERE = "move it away, or write somewhere else (--out)"
NEW_FILE_MODE = 0o644  # what is written is published (rendered trees, CODEOWNERS), never a secret


def write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write `path` through a temporary file in its folder (removed on failure), so it is never half-written;
    `mode`: its permission bits, else those of the file it replaces, else NEW_FILE_MODE."""
    try:
        if mode is None:
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else NEW_FILE_MODE
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(partial, mode)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelopsError(f"cannot write: {exc.strerror}", file=str(path),
                            hint="make it a writable file (or remove it) and run again") from None


def check_folder(folder: Path) -> None:
    """Raise, before anything is written, unless `folder` is a folder or can be made one (no part of its path
    is a file)."""
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                raise ModelopsError("is not a folder, but files go in it", file=str(part),
                                    hint=_ELSEWHERE)
            return


def check_file(path: Path, header: str | None = None) -> None:
    """Raise, before anything is written, unless `path` can be written as a file; with `header`, unless it is
    missing or a renderer wrote it (its first line starts with `header`)."""
    if path.is_dir():
        raise ModelopsError("is a folder where a file goes", file=str(path), hint=_ELSEWHERE)
    if header is not None and path.exists() and not owned([path], header):
        raise ModelopsError(f"is not replaced: its first line is not the header {header!r} of the files "
                            "`modelops render` writes", file=str(path), hint=_ELSEWHERE)
    check_folder(path.parent)


def shown(path: Path, base: Path) -> str:
    """`path` as messages show it: relative to `base` when inside it, else whole."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def owned(paths: Iterable[Path], header: str) -> list[Path]:
    """The files among `paths` that a renderer wrote: their first line starts with its `header`."""
    found = []
    for path in paths:
        with path.open("rb") as handle:
            if handle.readline().startswith(header.encode()):
                found.append(path)
    return found


def replace_owned(folder: Path, files: dict[str, str], header: str) -> list[Path]:
    """Make `folder` hold exactly `files` ({name: text}) among the .yaml files starting with `header` (others
    stay); write only what changed, and remove the folder when nothing is left in it. Returns the paths.
    Raises, before writing anything, when one of `files` would replace a file without the header."""
    for name in files:
        check_file(folder / name, header)
    current = set(owned(folder.glob("*.yaml"), header)) if folder.is_dir() else set()
    written = []
    for name, text in sorted(files.items()):
        path = folder / name
        written.append(path)
        current.discard(path)
        if path.is_file() and path.read_text() == text:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    for stale in current:
        stale.unlink()
    remove_if_empty(folder)
    return written


def remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
