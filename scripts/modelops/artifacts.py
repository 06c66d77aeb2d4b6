"""Artifact pointers: resolve them to a local path, and compute the digests that pin them.

Digest of a file: the sha256 of its bytes. Digest of a directory (the canonical tree digest): the
sha256 of the text made of one line per regular file, `<sha256 of the file>  <path relative to the
directory, with / separators>\\n`, sorted by path (bytewise, UTF-8): exactly what
`find . -type f | sort | xargs sha256sum` prints, with the leading `./` removed. Empty folders do
not count; symbolic links, FIFOs, sockets and devices are refused without being opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import ParseResult, urlparse

from modelops import settings
from modelops.errors import ModelopsError

_CHUNK = 1 << 20
_MLFLOW_ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
_EXTRAS = {"botocore": "s3", "boto3": "s3", "google": "gcs", "azure": "azure"}
REMOTE_SCHEMES = ("http", "https", "s3", "gs", "wasbs", "models", "runs", "mlflow-artifacts")
# where the SDK behind each store takes its credentials from (said in the hint of a refused transfer)
_CREDENTIALS = {"s3": "the AWS_* variables or ~/.aws, and MLFLOW_S3_ENDPOINT_URL for another S3 server",
                "gs": "GOOGLE_APPLICATION_CREDENTIALS, and STORAGE_EMULATOR_HOST for an emulator",
                "wasbs": "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY or Azure's default credential",
                "abfss": "AZURE_STORAGE_ACCESS_KEY or Azure's default credential"}

_NO_SUCH_OBJECT = "check the bucket and the key in the URI (is the artifact uploaded there?)"
# What a store's refusal means, matched in the error's type and text (MLflow wraps the SDKs' errors in its
# own), in this order, and what to do about it (given where the store's SDK takes its credentials from).
_CAUSES = (
    (re.compile(r"\b40[13]\b|signature|access ?key|credential|authenticat|authori[sz]|AccessDenied|Forbidden",
                re.IGNORECASE), "the store refused the credentials",
     lambda where: f"check the store's credentials ({where})"),
    (re.compile(r"connect|resolve|timed? ?out|unreachable", re.IGNORECASE), "the store is unreachable",
     lambda where: f"check the endpoint in the URI or the settings ({where}), and that it is up and reachable"),
    (re.compile(r"\b404\b|NoSuch|not ?found|does not exist|No such file", re.IGNORECASE), "no such object",
     lambda where: _NO_SUCH_OBJECT),
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_lines(folder: Path) -> list[str]:
    """The lines hashed for a directory's canonical digest."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            _kind(Path(dirpath) / name)
        for name in filenames:
            path = Path(dirpath) / name
            lines.append((path.relative_to(folder).as_posix(), file_sha256(path)))
    lines.sort(key=lambda item: item[0].encode())
    return [f"{digest}  {rel}\n" for rel, digest in lines]


def _kind(path: Path) -> str:
    """`dir` or `file`; anything else (a symbolic link, a FIFO, a socket, a device) is refused unopened."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ModelopsError(f"{path}: no such file or directory") from None
    if stat.S_ISLNK(mode):
        raise ModelopsError(f"{path} is a symbolic link", hint="artifacts hold regular files and folders only")
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise ModelopsError(f"{path} is not a regular file (a FIFO, socket or device)",
                        hint="artifacts hold regular files and folders only")


def digest(path: Path) -> str:
    """The sha256 of a file, or the canonical tree digest of a directory (module docstring)."""
    if _kind(path) == "dir":
        return hashlib.sha256("".join(tree_lines(path)).encode()).hexdigest()
    return file_sha256(path)


def parse(uri: str) -> ParseResult:
    """The parts of an artifact URI; a malformed one (e.g. `http://[::1`) is a ModelopsError."""
    try:
        return urlparse(uri)
    except ValueError as exc:
        raise ModelopsError(f"{uri!r} is not a valid URI: {exc}",
                            hint="fix the URI (a relative path, file://, http(s)://, s3://, ...)") from None


def scheme(uri: str) -> str:
    """`s3` for `s3://…`; `` for a relative path."""
    parsed = parse(uri)
    return parsed.scheme if len(parsed.scheme) > 1 else ""


def local_path(uri: str, folder: Path) -> Path | None:
    """The local path of a relative or file:// pointer (kept inside `folder` when relative); None if remote."""
    kind = scheme(uri)
    if kind in REMOTE_SCHEMES:
        return None
    if kind == "file":
        return Path(parse(uri).path)
    if kind:
        raise ModelopsError(f"unsupported scheme {kind!r}",
                            hint="use a relative path, file://, " + ", ".join(f"{s}://" for s in REMOTE_SCHEMES))
    relative = Path(uri)
    if relative.is_absolute() or ".." in relative.parts:
        raise ModelopsError(f"{uri!r} leaves the model folder",
                            hint="a relative artifact path stays inside the model folder (no '..', not absolute)")
    base = folder.resolve()
    resolved = (folder / relative).resolve()
    if resolved != base and base not in resolved.parents:
        raise ModelopsError(f"{uri!r} resolves outside the model folder (through a symbolic link)",
                            hint="keep the artifact itself inside the model folder")
    return resolved


def cache_dir() -> Path:
    return Path(os.environ.get("MODELOPS_CACHE", Path.home() / ".cache" / "modelops"))


Digester = Callable[[Path], str]


def fetch(uri: str, folder: Path, sha256: str, digester: Digester | None = None) -> Path:
    """A local, verified copy of the artifact: checked against `sha256` before it is returned.

    `digester` computes digests (default `digest`; a workspace passes its memo)."""
    digester = digester or digest
    path = local_path(uri, folder)
    if path is None:
        return _download(uri, sha256, digester)  # verified there
    if not path.exists():
        raise ModelopsError(f"{uri!r} does not exist", hint="commit the artifact or fix the path")
    actual = digester(path)
    if actual != sha256:
        raise ModelopsError(f"sha256 mismatch: the artifact's digest is {actual}",
                            hint="if the artifact is right, put this digest in the manifest "
                                 "(`modelops digest PATH`); a merged version's artifact never changes: "
                                 "bump the version instead")
    return path


def _download(uri: str, sha256: str, digester: Digester) -> Path:
    """Download with MLflow's artifact client into a cache keyed by the expected digest."""
    target = cache_dir() / "artifacts" / sha256
    if target.exists():
        entries = list(target.iterdir())
        if len(entries) == 1 and digester(entries[0]) == sha256:
            return entries[0]
        shutil.rmtree(target)
    with _staging(uri) as downloaded:
        actual = digester(downloaded)
        if actual != sha256:
            raise ModelopsError(f"sha256 mismatch: the artifact downloaded from {uri!r} has the digest {actual}",
                                hint="fix the digest in the manifest, or the artifact at its source")
        return _keep(downloaded, target)


def download(uri: str) -> tuple[Path, str]:
    """A remote artifact whose digest is not known yet (a version being released) and its digest: kept in
    the cache under that digest, where `fetch` finds it."""
    with _staging(uri) as downloaded:
        actual = digest(downloaded)
        target = cache_dir() / "artifacts" / actual
        shutil.rmtree(target, ignore_errors=True)
        return _keep(downloaded, target), actual


def download_data(uri: str, folder: Path) -> Path:
    """Download a remote file (any scheme `fetch` reads, and Azure's abfss://) into `folder`,
    unverified: for data that has no digest, such as the input of a batch scoring."""
    with _transport_errors("fetch", uri):
        return _download_to(uri, folder)


def upload(path: Path, uri: str) -> None:
    """Copy the local file `path` to `uri` (s3://bucket/key, gs://, wasbs://, abfss://, an MLflow artifact
    server's URL) with MLflow's artifact repositories: the file takes the URI's last segment as its name."""
    parent, _, name = uri.rstrip("/").rpartition("/")
    if name != path.name:
        raise ValueError(f"upload {path.name!r} as {name!r}: name the local file as the URI does")
    with _transport_errors("write", uri):
        _google_credentials(uri)
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        get_artifact_repository(parent).log_artifact(str(path))


def _keep(downloaded: Path, target: Path) -> Path:
    target.mkdir()
    final = target / downloaded.name
    downloaded.rename(final)
    return final


@contextlib.contextmanager
def _staging(uri: str) -> Iterator[Path]:
    """The artifact at `uri`, downloaded into a staging folder of the cache removed afterwards; the errors of
    the transfer said as ModelopsErrors."""
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=_ensure(cache_dir() / "artifacts")))
    try:
        with _transport_errors("fetch", uri):
            downloaded = _download_to(uri, staging)
        yield downloaded
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _transport_errors(verb: str, uri: str) -> Iterator[None]:
    """A missing cloud SDK or a refusal of the store becomes a ModelopsError naming the URI."""
    try:
        yield
    except ModelopsError:
        raise
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0], "cloud")
        hint = ("install mlflow-skinny beside modelops (remote files go through MLflow's artifact clients)"
                if (exc.name or "").startswith("mlflow") else f"pip install 'modelops[{extra}]'")
        raise ModelopsError(f"cannot {verb} {uri!r}: the {exc.name} package is missing", hint=hint) from None
    except Exception as exc:  # any transport error from MLflow's many artifact stores
        said = f"{type(exc).__name__}: {_first_failure(str(exc))}"
        where = _CREDENTIALS.get(scheme(uri), "the environment")
        for pattern, cause, hint in _CAUSES:
            if pattern.search(f"{type(exc).__name__}: {_text(exc)}"):
                raise ModelopsError(f"cannot {verb} {uri!r}: {said}", hint=f"{cause}: {hint(where)}") from None
        raise ModelopsError(f"cannot {verb} {uri!r}: {said}",
                            hint=f"check the URI, that the store answers, and the credentials ({where})") from None


def _first_failure(text: str) -> str:
    """The line of an error that says what went wrong: MLflow heads a failed download with `The following
    failures occurred ...` and a `##### File NAME #####` line per file, before each file's error."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("The following failures occurred"):
        lines = [line for line in lines[1:] if not line.startswith("#####")] or lines
    return (lines or [""])[0][:300]


def _text(exc: Exception) -> str:
    """The error's message on one line, without the `##### File …` headings of MLflow's download failures."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(line for line in lines if line and not line.startswith("#####"))[:300]


def _download_url(url: str, target: Path) -> None:
    """GET one file with MLflow's retrying client, retried as MLflow's other requests are
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES and _BACKOFF_FACTOR), not with its presigned-URL helper's own five."""
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_MAX_RETRIES
    from mlflow.utils.request_utils import augmented_raise_for_status, cloud_storage_http_request

    with cloud_storage_http_request("get", url, stream=True, max_retries=MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(),
                                    backoff_factor=MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get()) as response:
        augmented_raise_for_status(response)
        with target.open("wb") as out:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                out.write(chunk)


def _download_to(uri: str, folder: Path) -> Path:
    """A plain https:// URL is one file (`_download_url`); anything else goes through
    MLflow's artifact repositories (s3, gs, wasbs, models, runs, mlflow-artifacts, an MLflow artifact server)."""
    settings.mlflow_defaults()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # not one bar per file on stderr
    parsed = parse(uri)
    if parsed.scheme in ("http", "https") and _MLFLOW_ARTIFACTS_API not in parsed.path:
        target = folder / (Path(parsed.path).name or "artifact")
        _download_url(uri, target)
        return target
    _google_credentials(uri)
    import mlflow.artifacts

    downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
    if downloaded.is_dir() and not any(p.is_file() for p in downloaded.rglob("*")):
        raise ModelopsError(f"cannot fetch {uri!r}: no such object (nothing is stored under it)",
                            hint=_NO_SUCH_OBJECT)
    return downloaded


def _google_credentials(uri: str) -> None:
    """Load the credentials file GOOGLE_APPLICATION_CREDENTIALS names before a gs:// transfer: MLflow takes
    an unreadable one for no credentials at all, and goes on anonymously."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and scheme(uri) == "gs":
        import google.auth

        google.auth.load_credentials_from_file(path)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
