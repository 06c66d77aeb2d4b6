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
    return pins, problems


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
