"""Run the runner under uvicorn (uvloop, httptools with bounds: `connection.py`); several workers build the app
from the environment."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from functools import partial

import uvicorn
from fastapi import FastAPI

from modelops import flavors
from modelops.runner import collector, cpus, logs
from modelops.runner.app import create_app
from modelops.runner.connection import BoundedHttpTools, HeadLimits
from modelops.runner.loading import ServedModel, resolve
from modelops.runner.metrics import MULTIPROCESS_DIR
from modelops.runner.runtime import RunnerSettings
from modelops.runner.shutdown import CLOSING_S

_TARGET, _ENV, _VERSION = "MODELOPS_MODEL", "MODELOPS_ENV", "MODELOPS_VERSION"


def run(resolved: ServedModel, target: str, environment: str | None, version: str | None, *, host: str, port: int,
        workers: int, settings: RunnerSettings, access_log: bool = False) -> None:
    """Serve `resolved` (what `target`, `environment` and `version` name; several workers resolve it again).

    Unless set, each worker predicts on `predict_threads(...)` threads; the frameworks' own thread pools
    (OpenMP: XGBoost, LightGBM, scikit-learn) share what is left per thread.
    """
    cores = cpus.available()
    if not settings.predict_threads:
        settings = replace(settings, predict_threads=predict_threads(cores, workers, resolved.flavor))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // (workers * settings.predict_threads))))
    limits = HeadLimits(settings.max_header_bytes, settings.max_header_count, settings.header_timeout_s,
                        resolved.primary)
    options = {"host": host, "port": port, "loop": "uvloop", "http": partial(BoundedHttpTools, limits=limits),
               "access_log": False, "log_config": logs.config(access_log), "log_level": "info",
               "timeout_keep_alive": settings.idle_timeout_s, "timeout_graceful_shutdown": CLOSING_S}
    app = create_app(resolved, settings)  # here too with workers: bad keys or payload settings stop before binding
    if workers == 1:
        uvicorn.run(_collected(app), **options)
        return
    os.environ.update({_TARGET: target, _ENV: environment or "", _VERSION: version or ""})
    os.environ.update({f"MODELOPS_{k.upper()}": str(v) for k, v in vars(settings).items()})
    own_dir = "" if os.environ.get(MULTIPROCESS_DIR) else tempfile.mkdtemp(prefix="modelops-metrics-")
    if own_dir:  # the workers add up their metrics through files there (set before they start)
        os.environ[MULTIPROCESS_DIR] = own_dir
    try:
        uvicorn.run("modelops.runner.serve:app_from_environment", factory=True, workers=workers, **options)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)


def predict_threads(cores: int, workers: int, flavor: str) -> int:
    """A worker's share of the `cores` the process may use, less the one its event loop keeps unless the flavor
    scores without the GIL throughout (flavors.WITHOUT_THE_GIL); at least one."""
    share = cores // workers
    return max(1, share if flavor in flavors.WITHOUT_THE_GIL else share - 1)


def app_from_environment() -> FastAPI:
    """The app of one worker process, from MODELOPS_MODEL / MODELOPS_ENV / MODELOPS_VERSION and settings."""
    return _collected(create_app(resolve(os.environ[_TARGET], os.environ.get(_ENV) or None,
                                         os.environ.get(_VERSION) or None), RunnerSettings.from_env()))


def _collected(app: FastAPI) -> FastAPI:
    """`app`, in a process whose garbage collector is set for serving (`collector`)."""
    collector.tune()
    app.state.runtime.on_ready.append(collector.settle)
    return app
