"""The locks of a build context: exactly the wheels each venv of the image installs, with their sha256.

The host checks every downloaded wheel that the runner's or the SBOM tool's lock names against the lock's
hashes (`check`), strips the wheels, then resolves each venv's requirements offline against the context's own
wheels (`resolve`, pip's dry run) and writes the result with the sha256 of each wheel: the image installs it with
`pip install --require-hashes`, so the build installs those files and no other.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from modelops import locks
from modelops.artifacts import file_sha256
from modelops.errors import ModelopsError
from modelops.images.wheelhouse import Platform

HEADER = ("# The wheels this venv installs, with the sha256 of each file of the build context's wheels/, rendered by\n"
          "# modelops (pip install --require-hashes).\n")
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY_TAG = re.compile(r"^(manylinux1|manylinux2010|manylinux2014)_(\w+)$")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def check(wheels: list[Path]) -> None:
    """Refuse a wheel whose name and version a lock (the runner's, the SBOM tool's) pins with other hashes."""
    sources = ((locks.RUNNER, "modelops/runner/requirements.lock"), (locks.SBOM_TOOL, "modelops/images/sbom-tool.lock"))
    locked = [(display, locks.load(path, display)) for path, display in sources]
    for wheel in wheels:
        name, version = _name_version(wheel)
        for display, pins in locked:
            pin = pins.get(name)
            if pin is not None and pin.version == version and file_sha256(wheel) not in pin.hashes:
                raise ModelopsError(f"{wheel.name} is not the file {display} locks for {name}=={version} "
                                    "(its sha256 differs)", file=display, line=pin.line,
                                    hint="remove it from the wheelhouse and download it again; if the index "
                                         "serves new files for an old version, find out why before trusting them")


def platform_of(wheels: list[Path]) -> Platform:
    """The platform the wheels were downloaded for: their CPython version, and the newest manylinux among their tags."""
    if not wheels:
        raise ModelopsError("the wheelhouse holds no wheel", hint="download the wheels into it (docs/images.md, "
                                                                   "air-gapped builds), or build without --wheelhouse")
    pythons, machines, newest = set(), set(), (2, 5)
    for wheel in wheels:
        for tag in parse_wheel_filename(wheel.name)[3]:
            if re.fullmatch(r"cp3\d+", tag.abi):
                pythons.add(f"3.{tag.abi[3:]}")
            found, legacy = _MANYLINUX.match(tag.platform), _LEGACY_TAG.match(tag.platform)
            if found:
                machines.add(found[3])
                newest = max(newest, (int(found[1]), int(found[2])))
            elif legacy:
                machines.add(legacy[2])
                newest = max(newest, _LEGACY[legacy[1]])
    if len(pythons) != 1 or len(machines) != 1:
        raise ModelopsError(f"cannot tell which Python and machine the wheels are for (Pythons {sorted(pythons)}, "
                            f"machines {sorted(machines)})",
                            hint="use a wheelhouse downloaded for one platform (docs/images.md, air-gapped builds)")
    return Platform(pythons.pop(), "glibc", f"{newest[0]}.{newest[1]}", machines.pop())


def resolve(folder: Path, texts: list[str], platform: Platform) -> str:
    """The lock of what pip installs from `folder` alone for the requirement `texts` on `platform`."""
    with tempfile.TemporaryDirectory(prefix="modelops-lock-") as tmp:
        # --isolated: no pip.conf nor PIP_* variable adds another source (find-links) or a constraint
        command = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
                   "--no-index", "--find-links", str(folder), "--quiet", "--disable-pip-version-check", "--report", "-",
                   *platform.pip_args()]
        for i, text in enumerate(texts):
            (Path(tmp) / f"{i}.txt").write_text(text)
            command += ["--requirement", str(Path(tmp) / f"{i}.txt")]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ModelopsError(f"the wheels of the context do not install together:\n{tail}",
                            hint="a model that pins another version of a runner package must also pin what that "
                                 "version needs; for air-gapped builds, the wheelhouse must hold every wheel")
    lines = []
    for item in sorted(json.loads(done.stdout)["install"], key=lambda i: canonicalize_name(i["metadata"]["name"])):
        wheel = Path(unquote(urlparse(item["download_info"]["url"]).path))
        if wheel.parent.resolve() != folder.resolve():
            raise ModelopsError(f"pip chose {wheel}, which is not among the context's wheels ({folder})")
        name, version = _name_version(wheel)
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{file_sha256(wheel)}\n")
    return HEADER + "".join(lines)


def _name_version(wheel: Path) -> tuple[str, str]:
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename:
        raise ModelopsError(f"{wheel.name} is not a wheel's file name",
                            hint="remove it from the wheelhouse") from None
    return canonicalize_name(name), str(version)
