"""The `modelops` command: a click group whose verbs are imported only when used.

Errors are rendered once, here: a user error (ModelopsError) as its located problems, a refusal of the
file system or network as one line, anything else as one "unexpected error" line that says how to get the
traceback (`--traceback`). Each command returns its exit code.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from modelops import settings

# verb -> (module defining `command`, one-line help); keeping help here keeps `--help` instant.
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("modelops.commands.new", "Scaffold models/NAME/ from templates/."),
    "validate": ("modelops.commands.validate", "Check manifests, requirements, examples and artifacts."),
    "changed": ("modelops.commands.changed", "The models a git change touches (JSON, for a CI matrix)."),
    "scan": ("modelops.commands.scan", "Scan pinned requirements (or an SBOM) for known vulnerabilities."),
    "codeowners": ("modelops.commands.codeowners", "Write .github/CODEOWNERS from each manifest's owners."),
    "schema": ("modelops.commands.schema", "Print the manifest's JSON Schema."),
    "digest": ("modelops.commands.digest", "Print the sha256 of an artifact file or folder."),
    "sign": ("modelops.commands.sign", "Sign a version's artifact (OpenSSF model signing)."),
    "serve": ("modelops.commands.serve", "Serve a model (folder or models:/ URI): Swagger, A/B, shadow."),
    "score": ("modelops.commands.score", "Score a CSV, JSON Lines or Parquet file in batch, as the runner would."),
    "render": ("modelops.commands.render", "Image build contexts, or Kubernetes manifests (--target)."),
    "build": ("modelops.commands.build", "Build runner images with Docker (--push to the registry)."),
    "smoke": ("modelops.commands.smoke", "Run an image, wait for /ready, score the example, remove it."),
    "verify": ("modelops.commands.verify", "Check pushed images' labels, SBOM and provenance against the registries."),
    "plan": ("modelops.commands.plan", "What apply would change in the registry, and drift."),
    "apply": ("modelops.commands.apply", "Make the MLflow registry match git (idempotent)."),
    "unlock": ("modelops.commands.unlock", "Release the lock a killed apply left on a model."),
    "release": ("modelops.commands.release", "Add a version from an artifact, editing model.yaml in place."),
    "promote": ("modelops.commands.promote", "Change what an environment serves, or roll it back, in place."),
    "history": ("modelops.commands.history", "Which versions each environment served when, from git."),
    "import": ("modelops.commands.import_", "Write model folders from an MLflow registry (plain MLflow models)."),
    "canary": ("modelops.commands.canary", "Promote, hold or roll back a canary from its runners' metrics."),
}
_TRACEBACK_HINT = "  hint: run it again with --traceback (or MODELOPS_TRACEBACK=1) to see where, and report it"


class LazyGroup(click.Group):
    """A group that lists its verbs from COMMANDS, imports one only when it runs, and renders its errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> object:
        from modelops.errors import ModelopsError

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("traceback"):
                click.echo(traceback.format_exc().rstrip(), err=True)
            elif isinstance(exc, ModelopsError):
                click.echo(exc.render(), err=True)
            elif isinstance(exc, OSError):  # the file system or the network refused: say what and where
                where = f": {exc.filename}" if exc.filename else ""
                click.echo(f"error: {exc.strerror or exc}{where}", err=True)
                _settle_stdout()
            else:
                click.echo(f"unexpected error: {type(exc).__name__}: {str(exc)[:300]}", err=True)
                click.echo(_TRACEBACK_HINT, err=True)
            return 1


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelops")
@click.option("--traceback", is_flag=True, envvar="MODELOPS_TRACEBACK", help="Show tracebacks of errors.")
def cli(traceback: bool) -> None:
    """modelops: the models of an organisation in git, registered in MLflow, served from images.

    Run it from the repository (the folder holding models/), or set MODELOPS_ROOT.

    \b
    Examples:
      modelops validate                  # every model: manifests, artifacts, load and score
      modelops plan --format markdown    # what a merge would change, for a pull request
      modelops apply --build --push      # register, build, push, move the aliases
    """
    settings.mlflow_defaults()


def main() -> None:
    """Entry point: runs the group and exits with the command's code."""
    try:
        code = cli.main(standalone_mode=False)
        sys.stdout.flush()  # a full disk or a closed pipe is reported here, not at interpreter exit
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}", err=True)
        _settle_stdout()
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _settle_stdout() -> None:
    """Flush stdout; when it takes no more (full disk, closed pipe), point it at /dev/null so exit is quiet."""
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
