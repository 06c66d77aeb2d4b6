"""The `safety` engine: a local database read with safety's own code, or the `safety check` service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from functools import cached_property
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from modelops.errors import ModelopsError
from modelops.scan.findings import Finding, Package, severity_from_cvss

DB_FILES = ("insecure.json", "insecure_full.json")
SCHEMA_VERSION = "2.0.0"
VULNERABILITIES_FOUND = 64  # `safety check` exit code when it found something


class SafetyEngine:
    """safety's vulnerability database (schema 2.0.0).

    With `db`, the folder's `insecure.json` and `insecure_full.json` are read in process with safety's
    own functions: no network, no account. Without it, `safety check` queries Safety's service, which
    needs network access (and `SAFETY_API_KEY` for the commercial database).
    """

    name = "safety"

    def __init__(self, db: Path | None = None) -> None:
        self.db = db

    @property
    def source(self) -> str:
        return f"safety database {self.db}" if self.db else "safety service"

    def audit(self, packages: list[Package]) -> list[Finding]:
        """The findings for `packages`; raises ModelopsError when they cannot all be checked."""
        if not packages:
            return []
        return self._audit_local(packages) if self.db else self._audit_service(packages)

    @cached_property
    def _databases(self) -> tuple[dict, dict]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from safety.safety import fetch_database_file, is_valid_database
        loaded = []
        for name in DB_FILES:
            path = self.db / name
            if not path.is_file():
                raise ModelopsError(f"{name} is missing from the database folder", file=str(self.db),
                                    hint="the folder must hold insecure.json and insecure_full.json")
            try:
                data = fetch_database_file(str(self.db), db_name=name)
            except ValueError as exc:
                raise ModelopsError(f"invalid JSON: {exc}", file=str(path)) from None
            if not is_valid_database(data) or not isinstance(data.get("vulnerable_packages"), dict):
                found = data.get("meta", {}).get("schema_version") if isinstance(data, dict) else None
                raise ModelopsError(f"schema version {found!r} is not supported", file=str(path),
                                    hint=f"use a safety database of schema {SCHEMA_VERSION}")
            loaded.append(data)
        return loaded[0], loaded[1]

    def _audit_local(self, packages: list[Package]) -> list[Finding]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from safety.safety import get_cve_from, get_vulnerabilities
        index, full = self._databases
        base = full.get("meta", {}).get("base_domain") or ""
        findings = []
        for package in packages:
            try:
                version = Version(package.version)
            except InvalidVersion:
                raise ModelopsError(f"{package.name}=={package.version}: not a PEP 440 version",
                                    file=package.file, line=package.line) from None
            seen = set()
            for spec in index["vulnerable_packages"].get(package.name, []):
                try:
                    if not SpecifierSet(spec).contains(version, prereleases=True):
                        continue
                except InvalidSpecifier:
                    raise ModelopsError(f"{package.name}: invalid specifier {spec!r} in the database",
                                        file=str(self.db / DB_FILES[0])) from None
                for record in get_vulnerabilities(pkg=package.name, spec=spec, db=full):
                    ids = {i.get("type"): str(i.get("id")) for i in record.get("ids", [])}
                    advisory = ids.get("pyup") or ids.get("cve") or ids.get("pve") or ""
                    if advisory in seen:
                        continue
                    seen.add(advisory)
                    cve = get_cve_from(record, full)
                    findings.append(Finding(
                        package=package.name, version=package.version, advisory=advisory,
                        cve=cve.name if cve else "",
                        severity=severity_from_cvss(cve.cvssv3, cve.cvssv2) if cve else "unknown",
                        fixed_versions=tuple(v for v in record.get("fixed_versions", []) if v),
                        summary=str(record.get("advisory") or "").strip(),
                        url=f"{base}{record.get('more_info_path')}" if record.get("more_info_path") else ""))
        return findings

    def _audit_service(self, packages: list[Package]) -> list[Finding]:
        with tempfile.TemporaryDirectory(prefix="modelops-safety-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(f"{p.name}=={p.version}\n" for p in packages))
            report = Path(tmp) / "report.json"
            safety = Path(sys.executable).with_name("safety")
            command = [str(safety) if safety.exists() else "safety", "check", "-r", str(requirements),
                       "--save-json", str(report)]
            env = {**os.environ, "SAFETY_NO_TELEMETRY": "1"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode not in (0, VULNERABILITIES_FOUND) or not report.is_file():
                last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise ModelopsError(f"safety check failed (exit {done.returncode}): {last[0][:300]}",
                                    hint="without network access, scan against a local database: "
                                         "modelops scan --db DIR")
            data = json.loads(report.read_text())
        return [_from_report(v) for v in data.get("vulnerabilities", [])]


def _from_report(v: dict) -> Finding:
    """A finding from one entry of `safety check --save-json`."""
    severity = v.get("severity") or {}
    return Finding(
        package=v.get("package_name", ""), version=v.get("analyzed_version") or "",
        advisory=str(v.get("vulnerability_id", "")), cve=v.get("CVE") or "",
        severity=severity_from_cvss(severity.get("cvssv3"), severity.get("cvssv2")),
        fixed_versions=tuple(v.get("fixed_versions") or ()), summary=(v.get("advisory") or "").strip(),
        url=v.get("more_info_url") or "")
