"""Wheelhouses: the host downloads every wheel an image needs, so the build itself has no network.

The wheels are chosen for the base image's Python and platform (asked of the base image itself),
and kept in the cache under a key made of the requirements and that platform: a second model with
the same requirements, or a new version of the same model, reuses them without any download.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from modelops.artifacts import cache_dir
from modelops.errors import ModelopsError
from modelops.reporter import Reporter

_PROBE = ("import json, platform, sys; libc = platform.libc_ver(); "
          "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'libc': libc[0], "
          "'libc_version': libc[1], 'machine': platform.machine()}))")


@dataclass(frozen=True)
class Platform:
    """What the base image runs: Python version, C library and machine."""

    python: str
    libc: str
    libc_version: str
    machine: str

    def pip_args(self) -> list[str]:
        """`pip download` options selecting wheels that install on this platform."""
        abi = "cp" + self.python.replace(".", "")
        if self.libc != "glibc":
            raise ModelopsError(f"the base image uses {self.libc or 'an unknown C library'}, not glibc",
                                hint="use a Debian or Ubuntu based Python image (manylinux wheels need glibc)")
        major, minor = (int(p) for p in self.libc_version.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        if minor >= 17:
            tags.append(f"manylinux2014_{self.machine}")
        if minor >= 12:
            tags.append(f"manylinux2010_{self.machine}")
        if minor >= 5:
            tags.append(f"manylinux1_{self.machine}")
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python, "--abi", abi,
                "--abi", "abi3", "--abi", "none"]
        for tag in tags:
            args += ["--platform", tag]
        return args


def probe(client, image: str) -> Platform:  # client: docker.DockerClient
    """The platform of `image` (which must be present locally), cached by image id."""
    import docker.errors

    try:
        image_id = client.images.get(image).id
    except docker.errors.ImageNotFound:
        raise ModelopsError(f"base image {image} is not in the local Docker engine",
                            hint=f"docker pull {image} (or load it), or set MODELOPS_BASE_IMAGE "
                                 "to an image the engine has") from None
    cached = cache_dir() / "platforms" / f"{image_id.replace(':', '-')}.json"
    if cached.is_file():
        return Platform(**json.loads(cached.read_text()))
    try:
        output = client.containers.run(image, ["python3", "-c", _PROBE], network_mode="none", remove=True)
    except docker.errors.DockerException as exc:
        raise ModelopsError(f"cannot run python3 in the base image {image}: {exc}",
                            hint="the base image needs python3 on its PATH") from None
    platform = Platform(**json.loads(output.decode().strip().splitlines()[-1]))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(asdict(platform)))
    return platform


def prepare(requirements: list[str], platform: Platform, reporter: Reporter, *,
            separately: tuple[str, ...] = ()) -> Path:
    """A folder of wheels for `requirements` (texts of requirements files) on `platform`, cached.

    `requirements` are resolved together (they go into one venv); each text of `separately` is resolved
    on its own into the same folder (a tool of the builder stage, with a venv of its own, so that its
    dependencies never constrain the image's).
    """
    wanted = {"requirements": requirements, "platform": asdict(platform),
              **({"separately": list(separately)} if separately else {})}
    key = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:24]
    target = cache_dir() / "wheelhouse" / key
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    reporter.progress(f"downloading wheels for Python {platform.python} on {platform.machine} into the wheelhouse")
    try:
        for group, texts in enumerate([requirements, *([text] for text in separately)]):
            _download(staging, group, texts, platform)
        (staging / ".complete").write_text("\n".join(sorted(p.name for p in staging.glob("*.whl"))) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(dest: Path, group: int, texts: list[str], platform: Platform) -> None:
    """`pip download` the wheels of `texts`, resolved together, into `dest`."""
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
               "--dest", str(dest), *platform.pip_args()]
    listed = []
    for i, text in enumerate(texts):
        listed.append(dest / f".requirements-{group}-{i}.txt")
        listed[-1].write_text(text)
        command += ["--requirement", str(listed[-1])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for path in listed:
        path.unlink()
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ModelopsError(f"pip could not download the wheels:\n{tail}",
                            hint="every requirement needs a binary wheel for the image's platform; "
                                 "for air-gapped builds pass --wheelhouse DIR with the wheels in it")
