"""`modelops scan [PATHS] [--db DIR] [--engine safety|pip-audit] [--sbom FILE] [--format ...]`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from modelops import workspace as repo
from modelops.scan.engines import ENGINES

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--engine", type=click.Choice(ENGINES), default="safety", show_default=True,
              envvar="MODELOPS_SCAN_ENGINE", help="safety (its database) or pip-audit (OSV).")
@click.option("--db", type=click.Path(exists=True, file_okay=False, path_type=Path),
              envvar="MODELOPS_SCAN_DB",
              help="Offline: a local safety database folder (insecure.json, insecure_full.json).")
@click.option("--osv-url", envvar="MODELOPS_OSV_URL", help="pip-audit: the OSV query URL of a mirror.")
@click.option("--sbom", "sboms", multiple=True, type=_FILE,
              help="Also scan a CycloneDX JSON SBOM (e.g. an image's); alone, scans only the SBOMs.")
@click.option("--environment", "environments", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Also scan an installed Python environment (interpreter or venv), through its SBOM.")
@click.option("--image", "images", multiple=True,
              help="Also scan a local image, through the SBOM its io.modelops.sbom label names.")
@click.option("--save-sbom", type=click.Path(dir_okay=False, path_type=Path),
              help="With one --environment: keep its SBOM in this file.")
@click.option("--policy", "policy_file", type=_FILE,
              help="Policy file (default: models/scan-policy.yaml or [tool.modelops.scan]).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for people, json for machines, markdown for a PR comment.")
def command(paths: tuple[str, ...], engine: str, db: Path | None, osv_url: str | None,
            sboms: tuple[Path, ...], environments: tuple[Path, ...], images: tuple[str, ...],
            save_sbom: Path | None, policy_file: Path | None, fmt: str) -> None:
    """Scan each model's pinned requirements for known vulnerabilities; exit 1 on what the policy rejects.

    PATHS are model folders (default: every model, unless --sbom, --environment or --image is given).
    Findings the policy accepts (ignored until their expiry, or below the failing severity) are
    listed but do not fail.
    """
    from modelops.errors import ModelopsError
    from modelops.scan import engines, policy, report, sbom
    from modelops.scan.run import scan

    if save_sbom and len(environments) != 1:
        raise ModelopsError("--save-sbom needs exactly one --environment")
    root = repo.root()
    folders = repo.model_folders(paths, root) if paths or not (sboms or environments or images) else []
    loaded = policy.load(root, policy_file)
    chosen = engines.make(engine, db=db, osv_url=osv_url)
    with tempfile.TemporaryDirectory(prefix="modelops-sbom-") as tmp:
        boms = [(path.as_posix(), path) for path in sboms]
        for i, python in enumerate(environments):
            out = save_sbom or Path(tmp) / f"{i}.cdx.json"
            boms.append((f"environment {python}", sbom.generate(python, out)))
        boms += [(f"image {ref}", sbom.from_image(ref, Path(tmp) / f"image-{i}.cdx.json"))
                 for i, ref in enumerate(images)]
        result = scan(folders, boms, root, chosen, loaded, policy.today())
    click.echo(report.render(result, fmt), nl=fmt != "markdown")
    sys.exit(0 if result.ok else 1)
