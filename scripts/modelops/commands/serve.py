"""`modelops serve [MODEL_DIR | models:/name@alias]`."""

from __future__ import annotations

import click

from modelops.runner.runtime import RunnerSettings

_DEFAULTS = RunnerSettings()


@click.command("serve")
@click.argument("target", default=".", envvar="MODELOPS_MODEL")
@click.option("--env", "environment", envvar="MODELOPS_ENV",
              help="Environment whose deployment to serve (version, canary, shadow)  [default: production]")
@click.option("--version", envvar="MODELOPS_VERSION", help="Serve this one version instead of an environment.")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MODELOPS_HOST")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, envvar="PORT",
              help="A fixed port (the start-up line prints the address, so 0 is refused).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, envvar="MODELOPS_WORKERS",
              help="Processes, each loading the model (metrics are per process).")
@click.option("--max-body-bytes", type=click.IntRange(1), help=f"Larger bodies get 413  [default: "
              f"{_DEFAULTS.max_body_bytes}]")
@click.option("--batch-wait-ms", type=click.FloatRange(0), help=f"Longest wait for more requests to batch "
              f"[default: {_DEFAULTS.batch_wait_ms}]")
@click.option("--batch-budget-ms", type=click.FloatRange(0), help=f"Predicted cost of one predict call a batch stays "
              f"within (0: none)  [default: {_DEFAULTS.batch_budget_ms}]")
@click.option("--max-batch-rows", type=click.IntRange(1), help=f"Most rows in one predict call  [default: "
              f"{_DEFAULTS.max_batch_rows}]")
@click.option("--shadow-queue", type=click.IntRange(1), help=f"Requests waiting per shadow version before "
              f"drops  [default: {_DEFAULTS.shadow_queue}]")
@click.option("--access-log/--no-access-log", default=False, show_default=True, envvar="MODELOPS_ACCESS_LOG",
              help="One JSON log line per request (status, version, duration, rows, request id).")
def command(target: str, environment: str | None, version: str | None, host: str, port: int, workers: int,
            max_body_bytes: int | None, batch_wait_ms: float | None, batch_budget_ms: float | None,
            max_batch_rows: int | None, shadow_queue: int | None, access_log: bool) -> int:
    """Serve a model folder's environment, one version of it, or a registered models:/ URI.

    Endpoints: /docs, /invocations (MLflow scoring), /predict, /v2/models/NAME/infer, /health, /ready,
    /metrics. Settings also come from MODELOPS_ENV, MODELOPS_VERSION, PORT and MODELOPS_* variables.

    \b
    Examples:
      modelops serve models/iris --env staging
      modelops serve models/iris --version 1.1.0 --port 9000
      modelops serve models:/iris@production
    """
    from modelops import api
    from modelops.commands.output import TerminalReporter

    settings = RunnerSettings.from_env(max_body_bytes=max_body_bytes, batch_wait_ms=batch_wait_ms,
                                       batch_budget_ms=batch_budget_ms, max_batch_rows=max_batch_rows,
                                       shadow_queue=shadow_queue)
    api.serve(target, environment, version, host=host, port=port, workers=workers, settings=settings,
              access_log=access_log, reporter=TerminalReporter())
    return 0
