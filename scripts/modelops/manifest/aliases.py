"""The registry aliases an environment makes: `<env>`, `<env>-canary` and `<env>-shadow-<i>`.

They are named here, beside the manifest, so that `validate` refuses environments whose aliases MLflow
reserves or that collide, before the registry sees them.
"""

from __future__ import annotations

import re

from modelops.errors import Problem
from modelops.manifest.loading import LoadedManifest

_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def aliases_of(deployments: dict) -> dict[str, str]:
    """alias -> semantic version for deployments as the manifest writes them (plain data)."""
    aliases = {}
    for env, deployment in deployments.items():
        aliases[env] = deployment["version"]
        if deployment.get("canary"):
            aliases[f"{env}-canary"] = deployment["canary"]["version"]
        for i, version in enumerate(deployment.get("shadow") or []):
            aliases[f"{env}-shadow-{i}"] = version
    return aliases


def alias_problems(loaded: LoadedManifest) -> list[Problem]:
    """Environments making an alias MLflow reserves (latest, v<N>) or an alias another environment makes
    (e.g. `prod-canary` next to prod's canary)."""
    problems, made_by = [], {}
    for env, deployment in loaded.manifest.deployments.items():
        for alias in aliases_of({env: deployment.model_dump()}):
            if _RESERVED_ALIAS.match(alias):
                problems.append(loaded.problem(("deployments", env), f"environment {env!r} makes the alias "
                                               f"{alias!r}, which MLflow reserves",
                                               hint="rename the environment (not latest, not v<N>)"))
            elif alias in made_by:
                problems.append(loaded.problem(("deployments", env), f"environment {env!r} makes the alias "
                                               f"{alias!r}, which environment {made_by[alias]!r} also makes",
                                               hint="rename one environment"))
            made_by.setdefault(alias, env)
    return problems
