"""Writing files whole or not at all, with errors that name the path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from modelops.errors import ModelopsError


def write_text(path: Path, text: str) -> None:
    """Write `path` through a temporary file in its folder (removed on failure), so it is never half-written."""
    try:
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelopsError(f"cannot write: {exc.strerror}", file=str(path),
                            hint="make it a writable file (or remove it) and run again") from None
