"""`modelops promote MODEL ENV [VERSION] [--canary V --weight N] [--shadow V] [--end-canary] [--rollback]`."""

from __future__ import annotations

import click

from modelops.commands.output import echo_edit, workspace


@click.command("promote")
@click.argument("model")
@click.argument("env")
@click.argument("version", required=False)
@click.option("--canary", help="A canary version taking --weight percent of the traffic.")
@click.option("--weight", type=int, help="The canary's share of the traffic, 1-99 (alone: move the canary's).")
@click.option("--shadow", "shadow", multiple=True, help="A version mirrored, never answering (repeatable: the "
              "shadows become exactly these).")
@click.option("--no-shadow", is_flag=True, help="Stop every shadow.")
@click.option("--end-canary", "--no-canary", "end_canary", is_flag=True,
              help="Remove the canary: the main version takes all the traffic again.")
@click.option("--rollback", is_flag=True,
              help="Serve what ENV served before its last committed change (from git history).")
@click.option("--dry-run", is_flag=True, help="Check it and show the diff; write nothing.")
def command(model: str, env: str, version: str | None, canary: str | None, weight: int | None,
            shadow: tuple[str, ...], no_shadow: bool, end_canary: bool, rollback: bool, dry_run: bool) -> int:
    """Change what ENV of MODEL serves, editing deployments: in model.yaml in place (comments kept).

    VERSION becomes the version that answers; the canary's version promotes the canary (it takes all the
    traffic). The edited manifest must validate, or nothing is written. Prints the diff; asking for what
    is already served changes nothing. Merging the change is the deployment approval.

    \b
    Examples:
      modelops promote iris production 1.1.0                   # 1.1.0 answers every request
      modelops promote iris production --canary 1.2.0 --weight 10
      modelops promote iris production --weight 50             # move the canary's share
      modelops promote iris production 1.2.0                   # the canary 1.2.0 takes all the traffic
      modelops promote iris production --end-canary            # stop the canary (roll it back)
      modelops promote iris production --rollback              # what it served before its last change
      modelops promote iris staging 1.2.0 --shadow 1.1.0 --dry-run
    """
    from modelops import api
    from modelops.manifest.promote import Promotion

    if no_shadow and shadow:
        raise click.UsageError("--no-shadow and --shadow contradict each other")
    asked = Promotion(version=version, canary=canary, weight=weight, shadow=() if no_shadow else shadow or None,
                      end_canary=end_canary, rollback=rollback)
    echo_edit(api.promote(workspace(), model, env, asked, dry_run=dry_run), dry_run)
    return 0
