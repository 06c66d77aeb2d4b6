"""`modelops canary [MODEL...] [--env ENV] [--prometheus URL | --metrics-url URL...] [--write]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelops.commands.output import echo_json, workspace

if TYPE_CHECKING:
    from modelops.api import Judged

_MARKS = {True: "ok  ", False: "FAIL", None: "wait"}


@click.command("canary")
@click.argument("models", nargs=-1)
@click.option("--env", help="Only this environment (default: every environment with a rollout policy).")
@click.option("--prometheus", metavar="URL", help="Read the metrics from this Prometheus (default: the "
              "prometheus_url setting, or MODELOPS_PROMETHEUS_URL).")
@click.option("--metrics-url", "metrics_urls", metavar="URL", multiple=True,
              help="Read them from a runner's /metrics instead, since it started (repeatable: one per replica).")
@click.option("--write", is_flag=True, help="Rewrite the manifest: the next weight, the promotion or the "
              "rollback (validated first; comments and layout kept).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for machines (and the canary workflow).")
def command(models: tuple[str, ...], env: str | None, prometheus: str | None, metrics_urls: tuple[str, ...],
            write: bool, fmt: str) -> int:
    """Promote, hold or roll back each canary by its rollout policy (deployments.ENV.rollout), from the
    errors, latency and shadow agreement of its runners.

    MODEL is a model folder or name (default: every model). Exit 0: promote, 2: hold (too few answers, or
    nothing to roll out), 3: roll back, 1: error; with several verdicts, the highest of them.

    \b
    Examples:
      modelops canary iris --env production                       # the verdict, and the numbers
      modelops canary iris --env production --write               # and rewrite models/iris/model.yaml
      modelops canary --write --format json                       # every policy (the canary workflow)
      modelops canary iris --env production --metrics-url http://127.0.0.1:8080
    """
    from modelops import api
    from modelops.errors import ModelopsError, excerpt
    from modelops.manifest.model import MODELS_DIR

    ws = workspace()
    paths = []
    for model in models:
        if not Path(model).exists() and not (ws.root / MODELS_DIR / model).is_dir():
            raise ModelopsError(f"no model {excerpt(model)}: neither a folder nor a model under {MODELS_DIR}/",
                                field="MODEL", hint="name a model (iris) or its folder (models/iris)")
        paths.append(model if Path(model).exists() else str(ws.root / MODELS_DIR / model))
    judged = api.canary(ws, ws.folders(paths), env, named=bool(models), prometheus=prometheus,
                        metrics_urls=metrics_urls, write=write)
    if fmt == "json":
        changing = [j for j in judged if j.verdict.changes]
        echo_json({"verdicts": [{"model": j.model, "env": j.env, "file": j.file, **j.verdict.to_json(),
                                 "observed": j.observed.to_json(), "written": bool(j.diff), "diff": j.diff}
                                for j in judged],
                   "auto_merge": bool(changing) and all(j.verdict.auto_merge for j in changing)})
    elif not judged:
        click.echo("no deployment has a rollout policy (deployments.ENV.rollout): nothing to judge", err=True)
    for j in judged if fmt == "text" else ():
        _print(j)
    return max((j.verdict.exit_code for j in judged), default=0)


def _print(j: Judged) -> None:
    from modelops.canary.decide import count, ms

    verdict, observed = j.verdict, j.observed
    click.echo(f"{j.model} {j.env}: {verdict.verdict}: {verdict.summary}")
    click.echo(f"  read from {observed.source}, {observed.span}")
    for version, role in ((verdict.primary, "primary"), (verdict.candidate, "candidate")):
        traffic = observed.versions.get(version or "")
        if version and traffic is not None:
            click.echo(f"  {role} {version}: {count(traffic.requests)} scoring requests, "
                       f"{count(traffic.errors)} server errors, p99 {ms(traffic.p99_s)}")
    for check in verdict.checks:
        click.echo(f"  {_MARKS[check.ok]}  {check.text}")
    if j.diff:
        click.echo(f"  wrote {j.file}:")
        click.echo("\n".join(f"    {line}" for line in j.diff.rstrip("\n").splitlines()))
    elif verdict.changes:
        click.echo("  (run with --write to rewrite the manifest)")
