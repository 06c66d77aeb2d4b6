"""CycloneDX SBOMs of Python environments (`cyclonedx-py environment`), as images carry them.

An image built by modelops carries the SBOM of its venv at `IMAGE_PATH`, named by the label `LABEL`;
`modelops scan --sbom FILE` scans such a file, `modelops scan --environment PYTHON` a live environment.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from modelops.errors import ModelopsError

IMAGE_PATH = "/opt/venv/sbom.cdx.json"
LABEL = "io.modelops.sbom"


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
