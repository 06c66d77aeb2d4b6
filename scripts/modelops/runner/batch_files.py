"""Where batch scoring reads and writes: a local path, file://, or a remote store's URI.

A remote input is downloaded first (with the artifacts' clients: MLflow's, so mlflow-skinny and the store's
SDK must be installed) into a temporary folder, then read in chunks from disk. An output, and the rejects
file, are written to a temporary file beside their destination (a local one) or in the temporary folder (a
remote one), and only once scoring is done are they moved into place or uploaded: a run that fails leaves
nothing half-written.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import posixpath
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from modelops import artifacts
from modelops.errors import ModelopsError

INPUT_SCHEMES = ("s3", "gs", "wasbs", "abfss", "mlflow-artifacts", "http", "https")
OUTPUT_SCHEMES = ("s3", "gs", "wasbs", "abfss", "mlflow-artifacts")
_LOCAL_HINT = "a local path, file://, or a URI of {}"


def _remote(uri: str, schemes: tuple[str, ...]) -> bool:
    """True for a URI of `schemes`; False for a local path or file://; a ModelopsError for other schemes."""
    kind = artifacts.scheme(uri)
    if kind in schemes:
        return True
    if kind in ("", "file"):
        return False
    shown = ", ".join("mlflow-artifacts:/ (the tracking server's)" if s == "mlflow-artifacts" else f"{s}://"
                      for s in schemes)
    raise ModelopsError(f"{uri}: unsupported scheme {kind!r}", hint="use " + _LOCAL_HINT.format(shown))


def _local(uri: str) -> Path:
    return Path(artifacts.parse(uri).path) if artifacts.scheme(uri) == "file" else Path(uri)


def local_input(uri: str, scratch: Path) -> Path:
    """The local file to read for `uri` (downloaded into `scratch` when remote)."""
    if _remote(uri, INPUT_SCHEMES):
        return artifacts.download_data(uri, scratch)
    path = _local(uri)
    if not path.is_file():
        raise ModelopsError(f"{uri}: no such file" if not path.exists() else f"{uri}: not a regular file",
                            field="--input", hint="name the CSV, JSON Lines or Parquet file to score")
    return path


def identity(uri: str) -> str:
    """What names the same file for `uri`: an existing local file's device and inode (a hard or symbolic link
    is the file), another local path resolved (`.`, `..`), a remote URI with its scheme and host in lowercase
    and its path normalised (`//`, `.`, `..`)."""
    if not _remote(uri, INPUT_SCHEMES):
        path = _local(uri)
        with contextlib.suppress(OSError):
            found = path.stat()
            return f"inode {found.st_dev}:{found.st_ino}"
        return str(path.resolve())
    parts = artifacts.parse(uri)
    path = posixpath.normpath(re.sub("/+", "/", parts.path)) if parts.path else ""
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), path=path).geturl()


def check_distinct(files: dict[str, str | None]) -> None:
    """Raise, before anything is read, when two of `files` ({option: path or URI}) name the same file."""
    named = [(option, uri, identity(uri)) for option, uri in files.items() if uri]
    for (first, a, same_a), (second, b, same_b) in itertools.combinations(named, 2):
        if same_a == same_b:
            shown = a if a == b else f"{a} and {b}"
            raise ModelopsError(f"{first} and {second} name the same file, {shown}", field=second,
                                hint=f"give {second} a file of its own: score never writes over its input, "
                                     "its output or its rejects")


def check_output(uri: str, field: str) -> None:
    """Raise, before any work, when `uri` cannot be written (an unknown scheme, a folder, no such folder)."""
    if _remote(uri, OUTPUT_SCHEMES):
        return
    path = _local(uri)
    if path.is_dir():
        raise ModelopsError(f"{uri} is a folder", field=field, hint="name a file")
    if not path.parent.is_dir():
        raise ModelopsError(f"{uri}: no folder {path.parent}", field=field, hint="create the folder first")


@contextlib.contextmanager
def staged(uri: str, scratch: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """(a temporary file to write, `publish` that moves it to `uri` or uploads it); removed unless published."""
    remote = _remote(uri, OUTPUT_SCHEMES)
    if remote:
        folder = Path(tempfile.mkdtemp(dir=scratch))
        partial = folder / artifacts.parse(uri).path.rstrip("/").rpartition("/")[2]
    else:
        target = _local(uri)
        partial = target.parent / f".{target.name}.{secrets.token_hex(6)}.partial"
        partial.touch(exist_ok=False)  # the umask's permissions, as the file will have

    def publish() -> None:
        if remote:
            artifacts.upload(partial, uri)
        else:
            os.replace(partial, target)

    try:
        yield partial, publish
    finally:
        partial.unlink(missing_ok=True)
