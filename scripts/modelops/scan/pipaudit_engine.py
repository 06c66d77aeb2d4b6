"""The `pip-audit` engine: the OSV database, through api.osv.dev or a mirror (`--osv-url`)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.scan.findings import Finding, Package

OSV_URL = "https://api.osv.dev/v1/query"


class PipAuditEngine:
    """`pip-audit --strict` against OSV, without resolving or installing anything (`--no-deps`).

    A package pip-audit could not check is an error, never a clean result.
    """

    name = "pip-audit"

    def __init__(self, osv_url: str | None = None) -> None:
        self.osv_url = osv_url or OSV_URL

    @property
    def source(self) -> str:
        return f"OSV at {self.osv_url}"

    def audit(self, packages: list[Package]) -> list[Finding]:
        """The findings for `packages`; raises ModelopsError when they cannot all be checked."""
        if not packages:
            return []
        with tempfile.TemporaryDirectory(prefix="modelops-pip-audit-") as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(f"{p.name}=={p.version}\n" for p in packages))
            report = Path(tmp) / "report.json"
            command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
                       "--disable-pip", "--strict", "--vulnerability-service", "osv",
                       "--osv-url", self.osv_url,
                       "--format", "json", "--output", str(report), "--progress-spinner", "off",
                       "--cache-dir", str(Path(tmp) / "cache")]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if not report.is_file():
                last = done.stderr.strip().splitlines()[-1:] or ["no output"]
                raise ModelopsError(f"pip-audit could not check the packages (exit {done.returncode}): "
                                    f"{last[0][:300]}",
                                    hint=f"is {self.osv_url} reachable? Offline, pass --osv-url of a mirror "
                                         "or use --engine safety --db DIR")
            data = json.loads(report.read_text())
        findings = []
        for dependency in data.get("dependencies", []):
            if dependency.get("skip_reason"):
                name, reason = dependency.get("name"), dependency["skip_reason"]
                raise ModelopsError(f"pip-audit skipped {name}: {reason}",
                                    hint="a skipped package is not a clean one; fix the cause and rerun")
            for vuln in dependency.get("vulns", []):
                aliases = tuple(vuln.get("aliases") or ())
                findings.append(Finding(
                    package=dependency["name"], version=dependency.get("version", ""), advisory=vuln["id"],
                    cve=next((a for a in (vuln["id"], *aliases) if a.startswith("CVE-")), ""),
                    fixed_versions=tuple(vuln.get("fix_versions") or ()),
                    summary=(vuln.get("description") or "").strip().split("\n", 1)[0],
                    url=f"https://osv.dev/vulnerability/{vuln['id']}", aliases=aliases))
        return findings
