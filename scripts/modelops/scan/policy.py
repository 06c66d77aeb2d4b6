"""The scan policy: which severity fails, and which findings are accepted, why, and until when.

It lives in `models/scan-policy.yaml` or in `[tool.modelops.scan]` of pyproject.toml (not both):

    fail_severity: low          # low | medium | high | critical; unknown severities always fail
    ignore:
      - id: "64227"             # advisory id, CVE or alias
        package: jinja2         # optional: only for this package
        reason: templates are never rendered from user input
        expires: 2026-12-31     # after this day the ignore fails the scan
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from modelops.errors import ModelopsError, Problem, dotted
from modelops.files import shown
from modelops.manifest import safe_yaml
from modelops.scan.findings import SEVERITIES, Finding, severity_rank

POLICY_FILE = "models/scan-policy.yaml"
PYPROJECT_TABLE = "tool.modelops.scan"

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Ignore(BaseModel):
    """An accepted finding: justified, and only until it expires."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    id: NonBlank
    package: NonBlank | None = None
    reason: NonBlank
    expires: date

    def matches(self, finding: Finding) -> bool:
        return self.id in finding.ids() and (
            self.package is None or canonicalize_name(self.package) == finding.package)


class Policy(BaseModel):
    """What fails a scan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_severity: Literal[SEVERITIES] = "low"  # type: ignore[valid-type]
    ignore: Annotated[list[Ignore], Field(max_length=1000)] = []


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy and where each of its entries was written, for messages."""

    policy: Policy
    file: str
    prefix: tuple = ()
    lines: dict | None = None

    def problem(self, path: tuple, message: str, hint: str) -> Problem:
        full = self.prefix + path
        line = None
        for end in range(len(path), -1, -1):
            if self.lines and path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        return Problem(file=self.file, line=line, field=dotted(full), message=message, hint=hint)


@dataclass(frozen=True)
class Verdict:
    """A finding in one scanned target, with what the policy says of it."""

    target: str
    file: str
    line: int | None
    finding: Finding
    status: str  # "fail", "ignored" or "below-threshold"
    note: str = ""


def load(root: Path, tool_table: dict[str, Any], path: Path | None = None) -> LoadedPolicy:
    """The policy: `path`, else models/scan-policy.yaml, else `[tool.modelops.scan]` of `tool_table` (the
    repository's `[tool.modelops]`), else the defaults."""
    table = tool_table.get("scan")
    if path is None and (root / POLICY_FILE).is_file():
        path = root / POLICY_FILE
    if path is not None:
        if table is not None and path.resolve() == (root / POLICY_FILE).resolve():
            raise ModelopsError(f"the scan policy is both in {POLICY_FILE} and in [{PYPROJECT_TABLE}]",
                                file="pyproject.toml", hint="keep one of them")
        display = shown(path, root)
        data, lines = safe_yaml.load(path, display, empty_hint="write the policy (docs/ci.md), or delete the file")
        return _validated(data, LoadedPolicy(Policy(), display, (), lines))
    if table is not None:
        return _validated(table, LoadedPolicy(Policy(), "pyproject.toml", tuple(PYPROJECT_TABLE.split("."))))
    return LoadedPolicy(Policy(), "(default policy)")


def _validated(data: object, where: LoadedPolicy) -> LoadedPolicy:
    try:
        policy = Policy.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = [where.problem(tuple(err["loc"]), err["msg"].lower(),
                                  "each ignore needs id, reason and expires (YYYY-MM-DD); "
                                  f"fail_severity is one of: {', '.join(SEVERITIES)}")
                    for err in exc.errors()]
        raise ModelopsError(problems[0].message, file=where.file, problems=problems) from None
    return LoadedPolicy(policy, where.file, where.prefix, where.lines)


def today() -> date:
    return datetime.now(UTC).date()


def expired(loaded: LoadedPolicy, on: date) -> list[Problem]:
    """A problem for every ignore whose expiry date has passed."""
    return [loaded.problem(("ignore", i, "expires"), f"the ignore of {entry.id} expired on {entry.expires}",
                           hint="fix the vulnerability (upgrade), or renew the ignore with a reason "
                                "and a new expiry date")
            for i, entry in enumerate(loaded.policy.ignore) if entry.expires < on]


def judge(finding: Finding, policy: Policy, on: date) -> tuple[str, str]:
    """(status, note) of a finding under `policy` on day `on`."""
    matching = [entry for entry in policy.ignore if entry.matches(finding)]
    valid = [entry for entry in matching if entry.expires >= on]
    if valid:
        return "ignored", f"{valid[0].reason} (until {valid[0].expires})"
    if severity_rank(finding.severity) < severity_rank(policy.fail_severity):
        return "below-threshold", f"severity below {policy.fail_severity}"
    if matching:
        return "fail", f"ignore expired on {matching[0].expires}"
    return "fail", ""
