"""A model's requirements file: one `name[extras]==version` a line, optionally with an environment marker.

Comments and blank lines are allowed; options (`-r`, `-e`, `--index-url`), URLs, `@` references, ranges and
wildcards are not: images must be reproducible and scannable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelops.errors import Problem, excerpt
from modelops.manifest.loading import LoadedManifest

HINT = "pin an exact version (name==1.2.3), optionally with an environment marker; options and URLs are not allowed"
_COMMENT = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class Pin:
    """One pinned package, and the line that pins it."""

    name: str
    version: str
    line: int


def parse(loaded: LoadedManifest, text: str) -> tuple[list[Pin], list[Problem]]:
    """The pins of a model's requirements text, and a problem (naming file:line and the field `requirements`)
    for every line that is not a pin."""
    display = str(Path(loaded.display).parent / loaded.manifest.requirements)
    pins, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        pin = _pin(line, number)
        if pin is None:
            problems.append(Problem(file=display, line=number, field="requirements", hint=HINT,
                                    message=f"{excerpt(line)} is not pinned with == (name[extras]==version[; marker])"))
        else:
            pins.append(pin)
    return pins, problems + _flavor_problems(loaded.manifest.flavor, pins, display)


def _flavor_problems(flavor: str, pins: list[Pin], display: str) -> list[Problem]:
    """What a flavor's image needs from the requirements: pyfunc serves through `mlflow.pyfunc`, which
    mlflow-skinny and pandas give; the whole of MLflow (its tracking server, UI and their dependencies)
    has no use in a runner image."""
    if flavor != "pyfunc":
        return []
    named = {pin.name: pin for pin in pins}
    problems = []
    if "mlflow" in named:
        version = named["mlflow"].version
        problems.append(Problem(file=display, line=named["mlflow"].line, field="requirements",
                                message="mlflow installs the whole of MLflow in the image (server, UI, SQL); "
                                        "flavor pyfunc needs only mlflow.pyfunc",
                                hint=f"pin mlflow-skinny=={version} instead (and pandas)"))
    elif "mlflow-skinny" not in named:
        problems.append(Problem(file=display, field="requirements", message="flavor pyfunc needs mlflow-skinny",
                                hint="pin the MLflow version the model was saved with: mlflow-skinny==X.Y.Z"))
    if "pandas" not in named:
        problems.append(Problem(file=display, field="requirements", message="flavor pyfunc needs pandas "
                                "(mlflow.pyfunc predicts on DataFrames; mlflow-skinny does not bring it)",
                                hint="pin it: pandas==X.Y.Z"))
    return problems


def _pin(line: str, number: int) -> Pin | None:
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==":
        return None
    version = specifiers[0].version
    try:
        Version(version)
    except InvalidVersion:  # a wildcard such as ==1.*
        return None
    return Pin(canonicalize_name(requirement.name), version, number)
