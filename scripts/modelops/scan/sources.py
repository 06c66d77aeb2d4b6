"""What to scan: the pinned requirements of a model, or the Python packages listed in a CycloneDX SBOM."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelops.errors import ModelopsError, Problem
from modelops.scan.findings import Package
from modelops.validate import requirement_problems

PIN_HINT = "pin an exact version (name==1.2.3): an unpinned requirement cannot be scanned"


def requirements(path: Path, display: str) -> tuple[list[Package], list[Problem]]:
    """The packages pinned in a requirements file, and a problem for every line that is not pinned."""
    unpinned = dict(requirement_problems(path))
    problems = [Problem(file=display, line=line, field="requirements", message=message, hint=PIN_HINT)
                for line, message in unpinned.items()]
    packages = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or number in unpinned:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(Problem(file=display, line=number, field="requirements", message=str(exc),
                                    hint=PIN_HINT))
            continue
        version = next(iter(requirement.specifier)).version
        try:
            Version(version)
        except InvalidVersion:
            problems.append(Problem(file=display, line=number, field="requirements",
                                    message=f"{line!r} does not pin one PEP 440 version", hint=PIN_HINT))
            continue
        packages.append(Package(canonicalize_name(requirement.name), version, display, number))
    return packages, problems


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
    for component in _components(document.get("components", [])):
        purl = str(component.get("purl") or "")
        if purl.startswith("pkg:pypi/") and "@" in purl:
            name, _, version = purl[len("pkg:pypi/"):].split("?", 1)[0].partition("@")
            packages.add(Package(canonicalize_name(unquote(name)), unquote(version), display))
    if not packages:
        raise ModelopsError("the SBOM lists no PyPI package (no pkg:pypi/ purl)", file=display,
                            hint="generate it from the image's Python environment")
    return sorted(packages, key=lambda p: (p.name, p.version))


def _components(components: list) -> list[dict]:
    """Components and their nested components, flattened."""
    out = []
    for component in components if isinstance(components, list) else []:
        if isinstance(component, dict):
            out.append(component)
            out += _components(component.get("components", []))
    return out
