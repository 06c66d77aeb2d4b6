"""Platform settings: `[tool.modelops]` in the repository's pyproject.toml, overridden by the environment.

| setting        | environment (first set wins)                 | default                                  |
|----------------|----------------------------------------------|------------------------------------------|
| tracking_uri   | MODELOPS_TRACKING_URI, MLFLOW_TRACKING_URI   | sqlite:///<root>/.modelops/mlflow.db     |
| image_registry | MODELOPS_IMAGE_REGISTRY                      | 127.0.0.1:5000/models                    |
| base_image     | MODELOPS_BASE_IMAGE                          | python:3.11-slim                         |
| lock_timeout   | MODELOPS_LOCK_TIMEOUT (seconds, 0 < s <= 86400) | 600                                   |
| lock_lease     | MODELOPS_LOCK_LEASE (seconds, 0 < s <= 86400)   | 30                                    |
| gitops_repository | MODELOPS_GITOPS_REPOSITORY                | https://git.example.com/models.git       |
| gitops_branch  | MODELOPS_GITOPS_BRANCH                       | deploy                                   |
| compose_network | MODELOPS_COMPOSE_NETWORK (bridge or host)   | bridge                                   |
| prometheus_url | MODELOPS_PROMETHEUS_URL                      | (none: `modelops canary` says so)        |
| prometheus_selector | MODELOPS_PROMETHEUS_SELECTOR            | app_kubernetes_io_name="{model}",        |
|                |                                              | modelops_environment="{env}"             |

Two tables are read by their subsystems: `[tool.modelops.scan]` (scan/policy.py) and `[tool.modelops.signing]`
(signing/policy.py: trusted signers and which versions must be signed; no environment override).

Values that reach images and Kubernetes objects are checked here, once: a bad one is an error naming
where it came from (pyproject.toml or the environment variable).

Credentials are never settings: MLflow reads its own (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, cloud
credentials for the artifact store) from the environment.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelops.errors import ModelopsError

STATE_DIR = ".modelops"
MAX_LOCK_TIMEOUT = 86400
_ENV = {
    "tracking_uri": ("MODELOPS_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    "image_registry": ("MODELOPS_IMAGE_REGISTRY",),
    "base_image": ("MODELOPS_BASE_IMAGE",),
    "lock_timeout": ("MODELOPS_LOCK_TIMEOUT",),
    "lock_lease": ("MODELOPS_LOCK_LEASE",),
    "gitops_repository": ("MODELOPS_GITOPS_REPOSITORY",),
    "gitops_branch": ("MODELOPS_GITOPS_BRANCH",),
    "compose_network": ("MODELOPS_COMPOSE_NETWORK",),
    "prometheus_url": ("MODELOPS_PROMETHEUS_URL",),
    "prometheus_selector": ("MODELOPS_PROMETHEUS_SELECTOR",),
}
_DEFAULTS = {"tracking_uri": "", "image_registry": "127.0.0.1:5000/models", "base_image": "python:3.11-slim",
             "lock_timeout": "600", "lock_lease": "30", "gitops_repository": "https://git.example.com/models.git",
             "gitops_branch": "deploy", "compose_network": "bridge", "prometheus_url": "",
             "prometheus_selector": 'app_kubernetes_io_name="{model}",modelops_environment="{env}"'}
_REPOSITORY_PATH = r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)"
REGISTRY_RE = re.compile(rf"^[A-Za-z0-9.-]+(:[0-9]+)?{_REPOSITORY_PATH}*$")
IMAGE_RE = re.compile(rf"^[A-Za-z0-9.-]+(:[0-9]+)?{_REPOSITORY_PATH}*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
                      r"(@sha256:[0-9a-f]{64})?$")
# The schemes MLflow's model registry stores accept, less `file` (MLflow refuses its file store) and the
# Databricks Unity Catalog ones; a database scheme may name its driver (postgresql+psycopg2).
TRACKING_SCHEMES = ("http", "https", "databricks", "sqlite", "postgresql", "mysql", "mssql")
_TRACKING_HINT = ("set the http(s):// URL of an MLflow server, or a database URI such as sqlite:///path/mlflow.db "
                  "or postgresql://user@host/db (unset it for the embedded registry)")
PROMETHEUS_URL_RE = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"  # no user:password@
# one PromQL label matcher: a label name, an operator and a double-quoted value (no quote, backslash or newline)
_MATCHER = r'[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"[^"\\\n]*"'
# setting -> (pattern, what to set instead)
_CHECKS = {
    "image_registry": (REGISTRY_RE, "a registry and path such as registry.example.com/models"),
    "base_image": (IMAGE_RE, "an image such as python:3.11-slim or python:3.11-slim@sha256:<digest>"),
    "gitops_repository": (re.compile(r"^(https://|ssh://|git@)[^\s\"'\\]+$"),
                          "the https:// or ssh:// URL the GitOps engine clones"),
    "gitops_branch": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"), "a branch name such as deploy"),
    "compose_network": (re.compile(r"^(bridge|host)$"), "bridge (ports published) or host (the host's network)"),
    "prometheus_url": (re.compile(rf"^({PROMETHEUS_URL_RE})?$"),
                       "the http(s):// URL of Prometheus (its HTTP API is under /api/v1), without credentials"),
    "prometheus_selector": (re.compile(rf"^{_MATCHER}(,{_MATCHER})*$"),
                            'PromQL label matchers selecting one model\'s runners in one environment, such as '
                            'app_kubernetes_io_name="{model}",modelops_environment="{env}" ({model} and {env} '
                            'are filled in)'),
}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one repository."""

    root: Path
    tracking_uri: str
    image_registry: str
    base_image: str
    lock_timeout: float  # how long an apply waits for a live holder of a model's lock
    lock_lease: float  # a holder that stops renewing its lock for this long is taken over
    gitops_repository: str
    gitops_branch: str
    compose_network: str = "bridge"  # how Compose files connect the runners: bridge (ports) or host
    prometheus_url: str = ""  # where `modelops canary` reads the runners' metrics (empty: not set)
    prometheus_selector: str = _DEFAULTS["prometheus_selector"]  # {model} and {env} are filled in
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def error(self, key: str, message: str, hint: str) -> ModelopsError:
        """An error about setting `key`, naming where its value came from."""
        return ModelopsError(message, file=self.sources.get(key, "pyproject.toml"), field=f"tool.modelops.{key}",
                             hint=hint)

    @property
    def artifact_root(self) -> str | None:
        """Where model files go when the client writes them itself (a database URI): `.modelops/artifacts`.
        None for a server, which stores them where it is configured to."""
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return (self.root / STATE_DIR / "artifacts").as_uri()


def pyproject_table(root: Path) -> dict[str, Any]:
    """`[tool.modelops]` of the repository's pyproject.toml ({} without one); an unknown key is an error."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        tool = tomllib.loads(pyproject.read_text()).get("tool", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelopsError(f"invalid TOML: {exc}", file="pyproject.toml") from None
    table = tool.get("modelops", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ModelopsError("is not a table", file="pyproject.toml", field="tool" if table is None else "tool.modelops",
                            hint="write the settings under a [tool.modelops] header, one `key = value` a line")
    allowed = [*_DEFAULTS, "scan", "signing"]  # tables read by scan/policy.py and signing/policy.py
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            raise ModelopsError(f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                                file="pyproject.toml", field=f"tool.modelops.{key}",
                                hint=f"allowed keys are: {', '.join(allowed)}")
    return table


def _check_tracking_uri(uri: str, source: str) -> None:
    """Refuse a tracking URI MLflow's registry cannot use, or an in-memory database (lost at once)."""
    parts = urlsplit(uri)
    scheme = (parts.scheme or uri).split("+")[0]  # a bare `databricks` has no "://"
    if scheme not in TRACKING_SCHEMES or (scheme in ("http", "https") and not parts.netloc):
        raise ModelopsError(f"{uri!r} is not a tracking URI modelops can use (scheme one of: "
                            f"{', '.join(TRACKING_SCHEMES)})", file=source, field="tool.modelops.tracking_uri",
                            hint=_TRACKING_HINT)
    if scheme == "sqlite" and parts.path.strip("/") in ("", ":memory:"):
        raise ModelopsError(f"{uri!r} is an in-memory database: the registry would be lost when modelops exits",
                            file=source, field="tool.modelops.tracking_uri", hint=_TRACKING_HINT)


_SECONDS_HINTS = {"lock_timeout": "set how long an apply waits for another one, such as 600",
                  "lock_lease": "set how long a dead apply keeps its lock, such as 30"}


def _seconds(key: str, value: str, source: str) -> float:
    """A duration setting as seconds: a finite number above 0, at most a day."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_LOCK_TIMEOUT:  # also refuses nan and inf
        raise ModelopsError(f"{key} {value!r} is not a number of seconds above 0 and at most "
                            f"{MAX_LOCK_TIMEOUT}", file=source, field=f"tool.modelops.{key}", hint=_SECONDS_HINTS[key])
    return seconds


def embedded_uri(root: Path) -> str:
    return f"sqlite:///{(root / STATE_DIR / 'mlflow.db').as_posix()}"


def mlflow_defaults() -> None:
    """Unless the user set them: MLflow's telemetry off, and its HTTP client retrying a failed request 3 times
    (about 15 s) rather than 7 (minutes of silence in CI)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")


def load(root: Path, table: dict[str, Any] | None = None) -> Settings:
    """Settings for the repository at `root` (`table`: its `[tool.modelops]`, when already read), with
    MLflow's defaults set (`mlflow_defaults`)."""
    mlflow_defaults()
    values = dict(_DEFAULTS)
    table = pyproject_table(root) if table is None else table
    values.update({key: str(table[key]) for key in _DEFAULTS if key in table})
    source = {key: "pyproject.toml" if key in table else "(default)" for key in values}
    for key, names in _ENV.items():
        for name in names:
            if os.environ.get(name):
                values[key], source[key] = os.environ[name], name
                break
    for key, (pattern, instead) in _CHECKS.items():
        values[key] = values[key].rstrip("/")
        if not pattern.fullmatch(values[key]):
            raise ModelopsError(f"{values[key]!r} is not valid", file=source[key], field=f"tool.modelops.{key}",
                                hint=f"set {instead}")
    lock_timeout, lock_lease = (_seconds(key, values[key], source[key]) for key in ("lock_timeout", "lock_lease"))
    if values["tracking_uri"]:
        _check_tracking_uri(values["tracking_uri"], source["tracking_uri"])
    return Settings(root=root, tracking_uri=values["tracking_uri"] or embedded_uri(root),
                    image_registry=values["image_registry"], base_image=values["base_image"],
                    lock_timeout=lock_timeout, lock_lease=lock_lease, gitops_repository=values["gitops_repository"],
                    gitops_branch=values["gitops_branch"], compose_network=values["compose_network"],
                    prometheus_url=values["prometheus_url"], prometheus_selector=values["prometheus_selector"],
                    sources=source)
