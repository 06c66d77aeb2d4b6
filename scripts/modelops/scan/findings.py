"""The normalised vocabulary every engine speaks: packages in, findings out."""

from __future__ import annotations

from dataclasses import dataclass, field

# Lowest to highest; "unknown" (no CVSS score in the database) is judged as the worst case.
SEVERITIES = ("low", "medium", "high", "critical")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Package:
    """One pinned distribution, and where it was declared."""

    name: str
    version: str
    file: str
    line: int | None = None


@dataclass(frozen=True)
class Finding:
    """One advisory affecting one installed version of a package."""

    package: str
    version: str
    advisory: str
    cve: str = ""
    severity: str = UNKNOWN
    fixed_versions: tuple[str, ...] = ()
    summary: str = ""
    url: str = ""
    aliases: tuple[str, ...] = field(default=(), compare=False)

    def ids(self) -> set[str]:
        """Every identifier an ignore may use for this finding (advisory id, CVE, aliases)."""
        return {i for i in (self.advisory, self.cve, *self.aliases) if i}


def severity_rank(severity: str) -> int:
    """Order severities; unknown ranks above critical so that a threshold never lets it pass."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def severity_from_cvss(cvssv3: dict | None, cvssv2: dict | None = None) -> str:
    """`critical`/`high`/`medium`/`low` from a CVSS record (base_severity, else base_score), or unknown."""
    for record in (cvssv3, cvssv2):
        if not isinstance(record, dict):
            continue
        named = str(record.get("base_severity") or "").lower()
        if named in SEVERITIES:
            return named
        score = record.get("base_score")
        if isinstance(score, int | float):
            return ("low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical")
    return UNKNOWN
