"""`modelops scan [PATHS] [--db DIR] [--engine safety|pip-audit] [--sbom FILE] [--format ...]`."""

from __future__ import annotations

from pathlib import Path

import click

from modelops.commands.output import workspace
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
@click.option("--images", "built", type=_FILE,
              help="Also scan every image of a `build --format json` (or `apply --images-out`) file.")
@click.option("--save-sbom", type=click.Path(dir_okay=False, path_type=Path),
              help="With one --environment: keep its SBOM in this file.")
@click.option("--policy", "policy_file", type=_FILE,
              help="Policy file (default: models/scan-policy.yaml or [tool.modelops.scan]).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for people, json for machines, markdown for a PR comment.")
def command(paths: tuple[str, ...], engine: str, db: Path | None, osv_url: str | None,
            sboms: tuple[Path, ...], environments: tuple[Path, ...], images: tuple[str, ...], built: Path | None,
            save_sbom: Path | None, policy_file: Path | None, fmt: str) -> int:
    """Scan each model's pinned requirements for known vulnerabilities; exit 1 on what the policy rejects.

    PATHS are model folders (default: every model, unless --sbom, --environment, --image or --images is given).
    Findings the policy accepts (ignored until their expiry, or below the failing severity) are
    listed but do not fail.

    \b
    Examples:
      modelops scan --db safety-db/
      modelops scan --image 127.0.0.1:5000/models/iris:1.0.0 --format markdown
      modelops build models/iris --format json > images.json && modelops scan --images images.json
    """
    from modelops import api
    from modelops.scan import report

    ws = workspace()
    folders = ws.folders(paths) if paths or not (sboms or environments or images or built) else []
    result = api.scan(ws, folders, engine=engine, db=db, osv_url=osv_url, sboms=sboms, environments=environments,
                      images=images, save_sbom=save_sbom, policy_file=policy_file, built=built)
    click.echo(report.render(result, fmt), nl=fmt != "markdown")
    return 0 if result.ok else 1
