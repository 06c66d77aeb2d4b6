"""The per-model lock of apply: a registered model `<name>.modelops-lock`, held while the model changes.

Creating a registered model is atomic in every MLflow store, so two applies never change one model at
once. The holder renews the lock's expiry while it works; a lock past its expiry is taken over (its holder
died), and a waiter gives up after `lock_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from modelops.errors import ModelopsError
from modelops.reporter import Reporter
from modelops.settings import Settings

SUFFIX = ".modelops-lock"  # model names cannot contain dots, so a lock never collides with a model
_HOLDER, _EXPIRES = "modelops.lock.holder", "modelops.lock.expires"


def model_of(registered: str) -> str:
    """The model a lock's registered-model name locks (`iris.modelops-lock` -> iris); other names unchanged."""
    return registered.removesuffix(SUFFIX)


@contextlib.contextmanager
def hold(client: Any, settings: Settings, name: str, reporter: Reporter) -> Iterator[None]:
    """Hold `name`'s lock: a registered model `<name>.modelops-lock` (creating one is atomic). `reporter` is
    told once when the lock is held by another apply and this one waits."""
    from mlflow.exceptions import MlflowException

    lock, holder = name + SUFFIX, f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:12]})"
    timeout = settings.lock_timeout
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            client.create_registered_model(
                lock, tags={_HOLDER: holder, _EXPIRES: f"{time.time() + timeout:.0f}"},
                description=f"modelops apply is changing {name}; deleted when it is done")
            break
        except MlflowException as exc:
            # RESOURCE_DOES_NOT_EXIST: the store saw the lock, then its holder released it before the
            # store could read it back to report the conflict; try again.
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                raise
        held = _tags(client, lock)
        if held and float(held.get(_EXPIRES, 0)) < time.time():  # its holder died: take it over
            _release(client, lock, held.get(_HOLDER, ""))
        elif time.monotonic() > deadline:
            raise ModelopsError(f"another apply has been changing {name} for over {timeout:.0f}s",
                                hint=f"retry later; if no apply is running, delete the registered model {lock}")
        else:
            if held and not told:
                reporter.progress(
                    f"waiting for the lock {lock} held by {holder_of(held)} (taken over then unless its holder "
                    f"renews it; giving up after {timeout:.0f}s)")
                told = True
            time.sleep(0.5)
    stop = threading.Event()
    heartbeat = threading.Thread(target=_renew, args=(settings, lock, stop), daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()
        _release(client, lock, holder)


def _renew(settings: Settings, lock: str, stop: threading.Event) -> None:
    """Push the lock's expiry forward every third of lock_timeout while its holder works, so only a
    holder that died (and stopped renewing) is ever taken over."""
    import mlflow

    timeout = settings.lock_timeout
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    while not stop.wait(timeout / 3):
        try:
            client.set_registered_model_tag(lock, _EXPIRES, f"{time.time() + timeout:.0f}")
        except Exception as exc:  # a missed renewal is retried; the holder's own requests report outages
            logging.getLogger(__name__).debug("could not renew %s: %s", lock, exc)


def _tags(client: Any, lock: str) -> dict[str, str] | None:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(lock).tags)
    except MlflowException:
        return None


def _release(client: Any, lock: str, holder: str) -> None:
    from mlflow.exceptions import MlflowException

    held = _tags(client, lock)
    if held is not None and held.get(_HOLDER) == holder:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model(lock)


def holder_of(tags: dict[str, str]) -> str:
    """Who holds a lock until when: `host pid 12 (4f0c...) until 10:20:00 UTC`."""
    try:
        expires = datetime.fromtimestamp(float(tags.get(_EXPIRES, "")), UTC).strftime("%H:%M:%S UTC")
    except ValueError:
        expires = "an unknown time"
    return f"{tags.get(_HOLDER, 'an unknown holder')} until {expires}"
