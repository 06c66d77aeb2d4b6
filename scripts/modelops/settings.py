"""Platform settings: `[tool.modelops]` in the repository's pyproject.toml, overridden by the environment.

| setting        | environment (first set wins)                 | default                                  |
|----------------|----------------------------------------------|------------------------------------------|
| tracking_uri   | MODELOPS_TRACKING_URI, MLFLOW_TRACKING_URI   | sqlite:///<root>/.modelops/mlflow.db     |
| image_registry | MODELOPS_IMAGE_REGISTRY                      | 127.0.0.1:5000/models                    |
| base_image     | MODELOPS_BASE_IMAGE                          | python:3.11-slim                         |
| lock_timeout   | MODELOPS_LOCK_TIMEOUT (seconds, 0 < s <= 86400) | 600                                   |
| gitops_repository | MODELOPS_GITOPS_REPOSITORY                | https://git.example.com/models.git       |
| gitops_branch  | MODELOPS_GITOPS_BRANCH                       | deploy                                   |

Values that reach images and Kubernetes objects are checked here, once: a bad one is an error naming
where it came from (pyproject.toml or the environment variable).

Credentials are never settings: MLflow reads its own (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, cloud
credentials for the artifact store) from the environment.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import ModelopsError

STATE_DIR = ".modelops"
MAX_LOCK_TIMEOUT = 86400
_ENV = {
    "tracking_uri": ("MODELOPS_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    "image_registry": ("MODELOPS_IMAGE_REGISTRY",),
    "base_image": ("MODELOPS_BASE_IMAGE",),
    "lock_timeout": ("MODELOPS_LOCK_TIMEOUT",),
    "gitops_repository": ("MODELOPS_GITOPS_REPOSITORY",),
    "gitops_branch": ("MODELOPS_GITOPS_BRANCH",),
}
_DEFAULTS = {"tracking_uri": "", "image_registry": "127.0.0.1:5000/models", "base_image": "python:3.11-slim",
             "lock_timeout": "600", "gitops_repository": "https://git.example.com/models.git",
             "gitops_branch": "deploy"}
_REPOSITORY_PATH = r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)"
REGISTRY_RE = re.compile(rf"^[A-Za-z0-9.-]+(:[0-9]+)?{_REPOSITORY_PATH}*$")
IMAGE_RE = re.compile(rf"^[A-Za-z0-9.-]+(:[0-9]+)?{_REPOSITORY_PATH}*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
                      r"(@sha256:[0-9a-f]{64})?$")
# setting -> (pattern, what to set instead)
_CHECKS = {
    "image_registry": (REGISTRY_RE, "a registry and path such as registry.example.com/models"),
    "base_image": (IMAGE_RE, "an image such as python:3.11-slim or python:3.11-slim@sha256:<digest>"),
    "gitops_repository": (re.compile(r"^(https://|ssh://|git@)[^\s\"'\\]+$"),
                          "the https:// or ssh:// URL the GitOps engine clones"),
    "gitops_branch": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"), "a branch name such as deploy"),
}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one repository."""

    root: Path
    tracking_uri: str
    image_registry: str
    base_image: str
    lock_timeout: float
    gitops_repository: str
    gitops_branch: str

    @property
    def embedded(self) -> bool:
        """True when the registry is the embedded SQLite store under `.modelops/`."""
        return self.tracking_uri == embedded_uri(self.root)

    @property
    def artifact_root(self) -> str | None:
        """Where model files go when the client writes them itself (a database URI): `.modelops/artifacts`.
        None for a server, which stores them where it is configured to."""
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return (self.root / STATE_DIR / "artifacts").as_uri()


def _lock_timeout(value: str, source: str) -> float:
    """lock_timeout as seconds: a finite number above 0, at most a day."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_LOCK_TIMEOUT:  # also refuses nan and inf
        raise ModelopsError(f"lock_timeout {value!r} is not a number of seconds above 0 and at most "
                            f"{MAX_LOCK_TIMEOUT}",
                            file=source, field="tool.modelops.lock_timeout",
                            hint="set how long an apply waits for another one, such as 600")
    return seconds


def embedded_uri(root: Path) -> str:
    return f"sqlite:///{(root / STATE_DIR / 'mlflow.db').as_posix()}"


def load(root: Path) -> Settings:
    """Settings for the repository at `root`; MLflow's telemetry is turned off unless the user set it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    values = dict(_DEFAULTS)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("modelops", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ModelopsError(f"invalid TOML: {exc}", file="pyproject.toml") from None
        values.update({key: str(table[key]) for key in _DEFAULTS if key in table})
    source = dict.fromkeys(values, "pyproject.toml")
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
    lock_timeout = _lock_timeout(values["lock_timeout"], source["lock_timeout"])
    return Settings(root=root, tracking_uri=values["tracking_uri"] or embedded_uri(root),
                    image_registry=values["image_registry"], base_image=values["base_image"],
                    lock_timeout=lock_timeout, gitops_repository=values["gitops_repository"],
                    gitops_branch=values["gitops_branch"])
