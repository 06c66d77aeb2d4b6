"""Where batch scoring reads and writes: a local path, file://, or a remote store's URI.

A remote input is downloaded first (with the artifacts' clients: MLflow's, so mlflow-skinny and the store's
SDK must be installed) into a temporary folder, then read in chunks from disk. An output, and the rejects
file, are written to a temporary file beside their destination (a local one) or in the temporary folder (a
remote one), and only once scoring is done are they moved into place or uploaded: a run that fails leaves
nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
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
    raise ModelopsError(f"{uri}: unsupported scheme {kind!r}",
                        hint="use " + _LOCAL_HINT.format(", ".join(f"{s}://" for s in schemes)))


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
