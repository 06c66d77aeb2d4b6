"""`modelops release`: a new version from an artifact. The artifact is digested, copied into the model folder
(`artifacts/<version>/`, a local file or folder) or kept where it is (a URI), and appended to `versions:`;
the edited manifest is checked as validate checks it (each version loads and scores the example) before
anything is written. A refusal leaves the manifest and the artifacts folder as they were."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from modelops import artifacts
from modelops.errors import ModelopsError, excerpt
from modelops.files import shown
from modelops.manifest.edit import EditResult, ManifestEditor
from modelops.manifest.model import SEMVER_RE, semver_key
from modelops.manifest.scaffold import PLACEHOLDER_DIGEST
from modelops.manifest.validate import Fetch
from modelops.reporter import Reporter

ARTIFACTS = "artifacts"  # the model folder's artifacts, one folder per version


def release(root: Path, folder: Path, version: str, artifact: str, fetch: Fetch, *, description: str = "",
            dry_run: bool = False, reporter: Reporter | None = None) -> EditResult:
    """Add `version` to the manifest in `folder`, its artifact `artifact` (a local path, or a URI that
    artifact pointers allow). A version the scaffold listed without its artifact (`modelops new`) is filled
    in; the same release again changes nothing."""
    if not re.match(SEMVER_RE, version):
        raise ModelopsError(f"{excerpt(version)} is not a semantic version", field="--version",
                            hint="use MAJOR.MINOR.PATCH, such as 1.2.0 (optionally -pre.release)")
    editor = ManifestEditor(folder, root)
    versions = editor.loaded.manifest.versions
    listed = next((v for v in versions if v.version == version), None)
    pointer = bool(artifacts.scheme(artifact))
    if pointer:
        try:
            artifacts.local_path(artifact, folder)  # refuses a scheme artifact pointers do not allow
        except ModelopsError as exc:
            raise ModelopsError(exc.problem.message, field="--artifact", hint=exc.problem.hint) from None
    if listed and listed.artifact.sha256 != PLACEHOLDER_DIGEST:
        sha256 = _digest_of(artifact, folder, fetch, listed.artifact.uri, listed.artifact.sha256, pointer)
        if sha256 != listed.artifact.sha256:
            raise ModelopsError(f"{version} is already released, with another artifact (sha256 "
                                f"{listed.artifact.sha256[:12]}…, this one's is {sha256[:12]}…)", field="--version",
                                hint=f"a released version never changes: release a higher one than {_latest(versions)}")
        return editor.result(False, (f"{version} is already released with this artifact",))
    if not listed and semver_key(version) <= semver_key(_latest(versions)):
        raise ModelopsError(f"{version} does not come after {_latest(versions)}, the latest version",
                            field="--version", hint="versions are append-only, in increasing order: release a "
                                                    f"higher version than {_latest(versions)}")
    made = not (folder / ARTIFACTS).exists()
    staging: Path | None = None
    copied: Path | None = None  # where the artifact goes
    verified: Path | None = None  # its copy, checked, until it goes there
    try:
        if pointer:
            uri, sha256 = artifact, _digest_of(artifact, folder, fetch, "", "", True)
        else:
            source = _local(artifact)
            sha256 = artifacts.digest(source)  # refuses links, FIFOs and devices unopened
            uri, copied = _place(source, folder, version)
            if copied is not None:
                staging = _stage(source, folder, version, sha256)
                verified = staging if source.is_dir() else staging / source.name
        if listed:
            editor.set_artifact(version, uri, sha256, description)
        else:
            editor.append_version(version, uri, sha256, description)

        def staged(u: str, f: Path, s: str) -> Path:  # the copy under way stands for the artifact to be
            return verified if verified is not None and u == uri else fetch(u, f, s)

        editor.check(staged, offline=False, reporter=reporter)
        notes = [f"{version}: sha256 {sha256}"]
        if dry_run:
            return editor.result(False, tuple(notes))
        if staging is not None and copied is not None:
            if copied.is_dir():
                copied.rmdir()  # an empty folder left there (a non-empty one was refused)
            staging.rename(copied)
            notes.append(f"copied {artifact} to {shown(copied, root)}/")
            try:
                editor.write()
            except BaseException:
                shutil.rmtree(copied, ignore_errors=True)
                raise
            staging = None
        else:
            editor.write()
        return editor.result(True, tuple(notes))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if made:
            _remove_if_empty(folder / ARTIFACTS)


def _latest(versions: list) -> str:
    return max((v.version for v in versions), key=semver_key)


def _digest_of(artifact: str, folder: Path, fetch: Fetch, listed_uri: str, listed_sha256: str, pointer: bool
               ) -> str:
    """The sha256 of the artifact: a URI already listed is verified against its digest (fetched once, from
    the cache after), another URI downloaded, a local path digested."""
    if not pointer:
        return artifacts.digest(_local(artifact))
    if artifact == listed_uri:
        fetch(artifact, folder, listed_sha256)  # raises when it no longer matches
        return listed_sha256
    local = artifacts.local_path(artifact, folder)
    return artifacts.digest(local) if local else artifacts.download(artifact)[1]


def _local(artifact: str) -> Path:
    path = Path(artifact).absolute()
    if not (path.exists() or path.is_symlink()):
        raise ModelopsError(f"{artifact}: no such file or folder", field="--artifact",
                            hint="pass the artifact's path (a file or an MLflow model folder) or its URI")
    return path


def _place(source: Path, folder: Path, version: str) -> tuple[str, Path | None]:
    """The artifact's URI in the manifest and where it is copied to (None: it is in the model folder already,
    and stays where it is)."""
    inside = source.resolve()
    base = folder.resolve()
    if base in inside.parents:
        return inside.relative_to(base).as_posix() + ("/" if source.is_dir() else ""), None
    target = folder / ARTIFACTS / version
    if target.is_symlink() or (target.exists() and not (target.is_dir() and not any(target.iterdir()))):
        raise ModelopsError(f"{shown(target, folder.parent.parent)} already exists", field="--artifact",
                            hint="pass it as --artifact (it is then used where it is), or remove it")
    return f"{ARTIFACTS}/{version}/" + ("" if source.is_dir() else source.name), target


def _stage(source: Path, folder: Path, version: str, sha256: str) -> Path:
    """A copy of the artifact in a hidden folder beside where it goes, checked against `sha256`."""
    (folder / ARTIFACTS).mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".partial", dir=folder / ARTIFACTS))
    try:
        if source.is_dir():
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
            copied = staging
        else:
            copied = staging / source.name
            shutil.copyfile(source, copied)
        os.chmod(staging, 0o755)
        if artifacts.digest(copied) != sha256:
            raise ModelopsError(f"{source} changed while it was being copied", field="--artifact",
                                hint="release it again once nothing writes to it")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _remove_if_empty(path: Path) -> None:
    """Remove the artifacts folder made for a copy that was refused."""
    with contextlib.suppress(OSError):
        path.rmdir()
