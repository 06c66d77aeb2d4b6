"""What to scan: the pinned requirements of a model, the runner's lock (what every image installs), or the Python
packages listed in a CycloneDX SBOM."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from modelops import locks
from modelops.errors import ModelopsError, Problem
from modelops.manifest import requirements as pinned
from modelops.manifest.loading import LoadedManifest
from modelops.scan.findings import Package

PIN_HINT = "pin an exact version (name==1.2.3): an unpinned requirement cannot be scanned"


def requirements(loaded: LoadedManifest) -> tuple[list[Package], list[Problem]]:
    """The packages pinned in a model's requirements file, and a problem for every line that is not a pin."""
    display = str(Path(loaded.display).parent / loaded.manifest.requirements)
    pins, problems = pinned.parse(loaded, loaded.read("requirements"))
    return ([Package(pin.name, pin.version, display, pin.line) for pin in pins],
            [replace(p, hint=PIN_HINT) for p in problems])


RUNNER_DISPLAY = "modelops/runner/requirements.lock"


def runner(path: Path = locks.RUNNER, display: str = RUNNER_DISPLAY) -> list[Package]:
    """The packages of the runner's lock, which every runner image installs (the model's pins may replace some)."""
    return [Package(pin.name, pin.version, display, pin.line) for pin in locks.load(path, display).values()]


def sbom(path: Path, display: str) -> list[Package]:
    """The PyPI packages (purl `pkg:pypi/name@version`) among a CycloneDX JSON SBOM's components."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelopsError(f"cannot read the SBOM: {exc}", file=display,
                            hint="pass a CycloneDX JSON file, e.g. from `cyclonedx-py environment`") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise ModelopsError("not a CycloneDX JSON document (bomFormat is not CycloneDX)", file=display,
                            hint="pass a CycloneDX JSON file, e.g. from `cyclonedx-py environment`")
    packages = set()
    for component in components(document.get("components", [])):
        purl = str(component.get("purl") or "")
        if purl.startswith("pkg:pypi/"):
            name, _, version = purl[len("pkg:pypi/"):].split("?", 1)[0].split("#", 1)[0].partition("@")
            if not version:  # an unversioned package cannot be checked: never pass it as clean
                raise ModelopsError(f"{purl} has no version, so it cannot be checked", file=display,
                                    field="components", hint="generate the SBOM from an installed environment")
            packages.add(Package(canonicalize_name(unquote(name)), unquote(version), display))
    if not packages:
        raise ModelopsError("the SBOM lists no PyPI package (no pkg:pypi/ purl)", file=display,
                            hint="generate it from the image's Python environment")
    return sorted(packages, key=lambda p: (p.name, p.version))


def components(listed: list) -> list[dict]:
    """Components and their nested components, flattened."""
    out = []
    for component in listed if isinstance(listed, list) else []:
        if isinstance(component, dict):
            out.append(component)
            out += components(component.get("components", []))
    return out
