"""The per-model lock of apply: a registered model `<name>.modelops-lock`, held as a short lease.

Creating a registered model is atomic in every MLflow store, so two applies never change one model at
once. The holder records who it is (host, process, start, CI run) and renews the lease every third of
`lock_lease` (30 s by default) for as long as it works, so a long upload never loses its lock. A waiter
takes the lock over from a holder that is gone: at once when the holder was a process of this machine that
no longer runs, else when it saw the lease go unrenewed for a whole `lock_lease` by its own clock (no
clock of another host is compared). A waiter gives up after `lock_timeout` on a live holder.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.errors import ModelopsError
from modelops.reporter import Reporter
from modelops.settings import Settings

SUFFIX = ".modelops-lock"  # model names cannot contain dots, so a lock never collides with a model
_TAG = "modelops.lock."
HOLDER, PROCESS, CI_RUN, SINCE, RENEWED, LEASE = (f"{_TAG}{key}" for key in (
    "holder", "process", "ci_run", "since", "renewed", "lease"))
_EXPIRES = f"{_TAG}expires"  # written by earlier versions instead of RENEWED and LEASE
_CI_RUNS = (("GITHUB_RUN_ID", lambda env: f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                                          f"{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"),
            ("CI_JOB_URL", lambda env: env["CI_JOB_URL"]), ("BUILD_URL", lambda env: env["BUILD_URL"]))


def model_of(registered: str) -> str:
    """The model a lock's registered-model name locks (`iris.modelops-lock` -> iris); other names unchanged."""
    return registered.removesuffix(SUFFIX)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _machine() -> str:
    """This boot of this machine and its process namespace: where a process id means one process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"


def _started(pid: int) -> str:
    """When process `pid` started (clock ticks since boot), '' when there is no such process."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[-1].split()[19] if stat else ""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its tags say."""

    tags: dict[str, str]

    @classmethod
    def me(cls, lease: float, name: str = "") -> Holder:
        """This process taking a lock with `lease` now (`name`: the holder name of an earlier attempt)."""
        env, pid, now = os.environ, os.getpid(), f"{time.time():.3f}"
        run = next((url(env) for variable, url in _CI_RUNS if env.get(variable)), "")
        return cls({HOLDER: name or f"{socket.gethostname()} pid {pid} ({uuid.uuid4().hex[:12]})",
                    PROCESS: f"{_machine()}:{pid}:{_started(pid)}", CI_RUN: run, SINCE: now, RENEWED: now,
                    LEASE: f"{lease:g}"})

    @property
    def name(self) -> str:
        return self.tags.get(HOLDER, "an unknown holder")

    def lease(self, default: float) -> float:
        try:
            return float(self.tags[LEASE])
        except (KeyError, ValueError):
            return default

    def gone_from_here(self) -> bool:
        """True when the holder was a process of this machine (same boot, same process namespace) that is gone."""
        machine, _, rest = self.tags.get(PROCESS, "").rpartition(":")
        machine, _, pid = machine.rpartition(":")
        if not machine or machine != _machine() or not pid.isdigit():
            return False
        return _started(int(pid)) != rest

    def _ago(self, key: str) -> float | None:
        try:
            return max(0.0, time.time() - float(self.tags[key]))
        except (KeyError, ValueError):
            return None

    def describe(self) -> str:
        """`host pid 12 (4f0c…), CI run URL, for 40 s, renewed 3 s ago` (ages by this host's clock)."""
        parts = [self.name] + ([f"CI run {self.tags[CI_RUN]}"] if self.tags.get(CI_RUN) else [])
        since, renewed = self._ago(SINCE), self._ago(RENEWED)
        parts += [f"for {since:.0f} s"] if since is not None else []
        parts += [f"renewed {renewed:.0f} s ago"] if renewed is not None else []
        return ", ".join(parts)

    def live(self, default_lease: float) -> bool:
        """Whether the holder looks alive now: not gone from this machine, and renewed within its lease
        (plus a few seconds for clocks that disagree), or an earlier version's expiry not passed."""
        if self.gone_from_here():
            return False
        renewed = self._ago(RENEWED)
        if renewed is not None:
            return renewed <= self.lease(default_lease) + 5
        try:
            return float(self.tags[_EXPIRES]) >= time.time()
        except (KeyError, ValueError):
            return False


class _Watch:
    """When a waiter first saw the lock's current tags: a lease unchanged for a whole lease is dead."""

    def __init__(self) -> None:
        self.seen: tuple = ()
        self.since = 0.0

    def gone(self, holder: Holder, default_lease: float) -> str:
        """Why the holder is gone ('' while it may be alive)."""
        if holder.gone_from_here():
            return "its process on this machine is gone"
        if LEASE not in holder.tags and _EXPIRES in holder.tags:  # an earlier version's lock: its expiry
            return "" if holder.live(default_lease) else "its expiry passed"
        seen = tuple(sorted(holder.tags.items()))
        if seen != self.seen:
            self.seen, self.since = seen, time.monotonic()
        lease = holder.lease(default_lease)
        return f"it was not renewed for {lease:g} s" if time.monotonic() - self.since > lease else ""


@contextlib.contextmanager
def hold(client: Any, settings: Settings, name: str, reporter: Reporter) -> Iterator[None]:
    """Hold `name`'s lock while the block runs; `reporter` hears once of a wait and of each takeover."""
    from mlflow.exceptions import MlflowException

    lock, lease, timeout = name + SUFFIX, settings.lock_lease, settings.lock_timeout
    deadline, told, watch = time.monotonic() + timeout, False, _Watch()
    me = Holder.me(lease)
    while True:
        try:
            me = Holder.me(lease, me.name)  # since and renewed: now, not when this apply began to wait
            client.create_registered_model(lock, tags=me.tags,
                                           description=f"modelops apply is changing {name}; deleted when it is done")
            break
        except MlflowException as exc:
            # RESOURCE_DOES_NOT_EXIST: the store saw the lock, then its holder released it before the
            # store could read it back to report the conflict; try again.
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                raise
        held = tags_of(client, lock)
        if held is None:
            continue  # released meanwhile
        holder = Holder(held)
        gone = watch.gone(holder, lease)
        if gone:
            reporter.progress(f"taking over the lock {lock} from {holder.describe()}: {gone}")
            _release(client, lock, holder.name)
        elif time.monotonic() > deadline:
            raise ModelopsError(f"another apply has been changing {name} for over {timeout:.0f}s: {holder.describe()}",
                                hint=f"retry later; if that apply is gone, `modelops unlock {name}` releases the lock")
        else:
            if not told:
                reporter.progress(f"waiting for the lock {lock} held by {holder.describe()} (taken over if it is "
                                  f"not renewed for {holder.lease(lease):g} s; giving up after {timeout:.0f}s)")
                told = True
            time.sleep(0.5)
    stop = threading.Event()
    renewal = threading.Thread(target=_renew, args=(settings, lock, stop), daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()
        _release(client, lock, me.name)


def _renew(settings: Settings, lock: str, stop: threading.Event) -> None:
    """Renew the lease every third of lock_lease while its holder works: only a holder that died is taken over."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    while not stop.wait(settings.lock_lease / 3):
        try:
            client.set_registered_model_tag(lock, RENEWED, f"{time.time():.3f}")
        except Exception as exc:  # a missed renewal is retried; the holder's own requests report outages
            logging.getLogger(__name__).debug("could not renew %s: %s", lock, exc)


def tags_of(client: Any, lock: str) -> dict[str, str] | None:
    """The tags of the lock's registered model; None when nobody holds it."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(lock).tags)
    except MlflowException:
        return None


def _release(client: Any, lock: str, holder: str) -> None:
    """Delete the lock if `holder` still holds it."""
    from mlflow.exceptions import MlflowException

    held = tags_of(client, lock)
    if held is not None and held.get(HOLDER) == holder:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model(lock)


def unlock(client: Any, settings: Settings, name: str, *, force: bool = False) -> str:
    """Release `name`'s lock for an operator: refused while its holder looks alive unless `force`.
    Returns what was done."""
    from mlflow.exceptions import MlflowException

    lock = name + SUFFIX
    held = tags_of(client, lock)
    if held is None:
        return f"{name} is not locked: nothing to do"
    holder = Holder(held)
    if holder.live(settings.lock_lease) and not force:
        raise ModelopsError(f"the lock of {name} is held by {holder.describe()}, which looks alive",
                            hint="wait for that apply to finish; --force releases it anyway (only when you know "
                                 "it is gone: two applies would then change the model at once)")
    with contextlib.suppress(MlflowException):  # released meanwhile: the same outcome
        client.delete_registered_model(lock)
    return f"released the lock of {name} (held by {holder.describe()})"
