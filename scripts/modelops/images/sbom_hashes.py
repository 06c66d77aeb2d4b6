"""Add to an image's SBOM the sha256 of the wheel each component was installed from (the image's lock).

The builder stage runs it after `cyclonedx-py environment`, which records none:
`python -m modelops.images.sbom_hashes SBOM LOCK`. The document stays byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from modelops import locks


def add(document: dict, pins: dict[str, locks.LockedPin]) -> dict:
    """`document` with `hashes` on each top-level component that `pins` locks at its version."""
    for component in document.get("components", []):
        pin = pins.get(canonicalize_name(str(component.get("name", ""))))
        if pin is not None and pin.version == component.get("version"):
            component["hashes"] = [{"alg": "SHA-256", "content": digest} for digest in sorted(pin.hashes)]
    return document


def main(sbom: str, lock: str) -> None:
    path = Path(sbom)
    document = add(json.loads(path.read_text()), locks.load(Path(lock)))
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
