"""Write into an image's CycloneDX SBOM the sha256 of the wheel each Python package was installed from.

Run by the image's builder stage with the base image's bare `python3` (standard library only):
`python3 sbom_hashes.py SBOM PIP_REPORT`, where PIP_REPORT is `pip install --report`'s JSON (pip 23+ records
each installed wheel's `sha256=...` under `download_info.archive_info.hash`). Each `pkg:pypi/` component
gets `hashes: [{"alg": "SHA-256", "content": ...}]`, so that the SBOM and the image's provenance (which
lists every wheel of the build context with its sha256) can be compared; a component pip did not install
is an error, never left without a hash.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ALG = "SHA-256"


def canonical(name: str) -> str:
    """PEP 503 normalisation (as `packaging.utils.canonicalize_name`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(report: dict) -> dict[tuple[str, str], str]:
    """(canonical name, version) -> sha256 hex of the wheel, from a `pip install --report` document."""
    found = {}
    for item in report.get("install", []):
        info = (item.get("download_info") or {}).get("archive_info") or {}
        digest = (info.get("hashes") or {}).get("sha256") or info.get("hash", "").removeprefix("sha256=")
        metadata = item.get("metadata") or {}
        if digest and "name" in metadata and "version" in metadata:
            found[canonical(metadata["name"]), metadata["version"]] = digest
    return found


def add_hashes(sbom: dict, wheels: dict[tuple[str, str], str]) -> list[str]:
    """Set the hashes of each PyPI component of `sbom` (in place); the purls no wheel accounts for."""
    missing = []
    for component in sbom.get("components", []):
        purl = str(component.get("purl") or "")
        if not purl.startswith("pkg:pypi/"):
            continue
        name, _, version = purl[len("pkg:pypi/"):].split("?", 1)[0].partition("@")
        digest = wheels.get((canonical(name), version))
        if digest is None:
            missing.append(purl)
        else:
            component["hashes"] = [{"alg": ALG, "content": digest}]
    return missing


def main(sbom_path: str, report_path: str) -> int:
    sbom = json.loads(Path(sbom_path).read_text())
    missing = add_hashes(sbom, installed(json.loads(Path(report_path).read_text())))
    if missing:
        print(f"no installed wheel for: {', '.join(missing)}", file=sys.stderr)
        return 1
    Path(sbom_path).write_text(json.dumps(sbom, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
