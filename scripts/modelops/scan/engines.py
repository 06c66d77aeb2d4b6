"""The scanning engines behind one interface."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from modelops.errors import ModelopsError
from modelops.scan.findings import Finding, Package
from modelops.scan.pipaudit_engine import PipAuditEngine
from modelops.scan.safety_engine import SafetyEngine


class Engine(Protocol):
    """Turns pinned packages into findings; raises ModelopsError rather than skip a package."""

    name: str

    @property
    def source(self) -> str: ...

    def audit(self, packages: list[Package]) -> list[Finding]: ...


ENGINES = ("safety", "pip-audit")


def make(name: str, *, db: Path | None = None, osv_url: str | None = None) -> Engine:
    """The engine called `name`, configured with the options that apply to it."""
    if name not in ENGINES:
        raise ModelopsError(f"unknown engine {name!r}", hint=f"allowed values are: {', '.join(ENGINES)}")
    if db is not None and name != "safety":
        raise ModelopsError("--db is a safety database", hint="use --engine safety with --db, "
                            "or --osv-url with --engine pip-audit")
    if osv_url is not None and name != "pip-audit":
        raise ModelopsError("--osv-url applies to the pip-audit engine", hint="add --engine pip-audit")
    return SafetyEngine(db) if name == "safety" else PipAuditEngine(osv_url)
