"""CycloneDX SBOMs of Python environments (`cyclonedx-py environment`), as images carry them.

An image built by modelops carries the SBOM of its venv at `IMAGE_PATH`, named by the label `LABEL`;
`modelops scan --image REF` reads it from a local image, `--sbom FILE` scans such a file, and
`--environment PYTHON` a live environment.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from modelops.errors import ModelopsError
from modelops.scan import sources

IMAGE_PATH = "/opt/venv/sbom.cdx.json"
LABEL = "io.modelops.sbom"
_SHA256 = "SHA-256"  # the algorithm of the wheel hashes the image builder writes (images/sbom_hashes.py)
MAX_BYTES = 64 * 1024 * 1024


def generate(python: Path, out: Path) -> Path:
    """Write the CycloneDX JSON SBOM of the environment of interpreter `python` (or venv folder) to `out`."""
    if not python.exists():
        raise ModelopsError(f"{python}: no such interpreter or environment",
                            hint="pass a Python interpreter, e.g. .venv/bin/python, or a venv folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as tmp:
        partial = Path(tmp.name)
    # --no-validate: checking the document against the CycloneDX schema takes ~30 s for 150 packages,
    # and `sources.sbom` reads only the purls.
    command = [sys.executable, "-m", "cyclonedx_py", "environment", str(python), "--output-format", "JSON",
               "--output-reproducible", "--no-validate", "--output-file", str(partial)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ModelopsError(f"cyclonedx-py could not read {python}: {last[0][:300]}",
                                hint="pass the interpreter of a Python environment")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def from_image(ref: str, out: Path) -> Path:
    """Copy the SBOM named by an image's `LABEL` out of the local image `ref` (never started) into `out`."""
    import docker

    try:
        client = docker.from_env()
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise ModelopsError(f"image {ref} is not in the local Docker engine", hint=f"docker pull {ref}") from None
    except docker.errors.DockerException as exc:
        raise ModelopsError(f"cannot reach the Docker engine: {exc}", hint="start Docker or set DOCKER_HOST") from None
    path = (image.labels or {}).get(LABEL)
    if not path or not path.startswith("/"):
        raise ModelopsError(f"image {ref} has no {LABEL} label naming its SBOM",
                            hint=f"build it with a template that writes the SBOM to {IMAGE_PATH} (docs/ci.md)")
    container = client.containers.create(image.id, command=["sbom"], entrypoint=[], network_disabled=True)
    try:
        stream, stat = container.get_archive(path)
        if stat.get("size", 0) > MAX_BYTES:
            raise ModelopsError(f"{ref}:{path} is {stat['size']} bytes, more than {MAX_BYTES}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            data = archive.extractfile(member) if member and member.isfile() else None
            if data is None:
                raise ModelopsError(f"{ref}:{path} is not a file", hint=f"fix the {LABEL} label or the template")
            out.write_bytes(data.read())
    except docker.errors.NotFound:
        raise ModelopsError(f"image {ref} has no {path}, which its {LABEL} label names",
                            hint="fix the template that writes the SBOM") from None
    finally:
        container.remove(force=True)
    return out


def wheel_hashes(path: Path, display: str) -> dict[tuple[str, str], str]:
    """(canonical name, version) -> the SHA-256 an image's SBOM gives each PyPI component (`images/sbom_hashes`
    writes them), "" for a component without one."""
    listed = {(p.name, p.version) for p in sources.sbom(path, display)}
    found = {}
    for component in sources.components(json.loads(path.read_text()).get("components", [])):
        name, _, version = str(component.get("purl") or "").removeprefix("pkg:pypi/").partition("@")
        key = (canonicalize_name(unquote(name)), unquote(version.split("?", 1)[0].split("#", 1)[0]))
        if key in listed:
            found[key] = next((str(h.get("content", "")) for h in component.get("hashes") or []
                               if isinstance(h, dict) and h.get("alg") == _SHA256), "")
    return found
