"""A scan report as text (people), json (machines) or markdown (pull-request comments)."""

from __future__ import annotations

import json
from dataclasses import asdict

from modelops.scan.run import Report

FORMATS = ("text", "json", "markdown")


def render(report: Report, fmt: str) -> str:
    """The report in `fmt`."""
    return {"text": _text, "json": _json, "markdown": _markdown}[fmt](report)


def _summary(report: Report) -> str:
    counts = {s: sum(v.status == s for v in report.verdicts) for s in ("fail", "ignored", "below-threshold")}
    verdict = "passed" if report.ok else "FAILED"
    return (f"scan {verdict}: {len(report.targets)} target(s), {report.packages} package(s), "
            f"{counts['fail']} failing finding(s), {counts['ignored']} ignored, "
            f"{counts['below-threshold']} below threshold, {len(report.problems)} problem(s) "
            f"[{report.source}; policy: {report.policy}]")


def _text(report: Report) -> str:
    lines = [p.render() for p in report.problems]
    for v in report.verdicts:
        f = v.finding
        where = v.file + (f":{v.line}" if v.line else "")
        fixed = ", ".join(f.fixed_versions) or "none known"
        lines.append(f"{where}: {f.package}=={f.version}: {f.advisory}{' (' + f.cve + ')' if f.cve else ''} "
                     f"[{f.severity}] {v.status.upper()}{': ' + v.note if v.note else ''}")
        lines.append(f"  {f.summary[:200]}" + (f"\n  fixed in: {fixed}" if v.status == "fail" else ""))
        if v.status == "fail":
            lines.append("  hint: upgrade to a fixed version, or add an ignore with a reason and an expiry "
                         "date to the scan policy")
    lines.append(_summary(report))
    return "\n".join(lines)


def _json(report: Report) -> str:
    return json.dumps({
        "ok": report.ok, "engine": report.engine, "source": report.source, "policy": report.policy,
        "targets": report.targets, "packages": report.packages,
        "findings": [{"target": v.target, "file": v.file, "line": v.line, "package": v.finding.package,
                      "version": v.finding.version, "advisory": v.finding.advisory, "cve": v.finding.cve,
                      "severity": v.finding.severity, "fixed_versions": list(v.finding.fixed_versions),
                      "summary": v.finding.summary, "url": v.finding.url, "status": v.status, "note": v.note}
                     for v in report.verdicts],
        "problems": [asdict(p) for p in report.problems]}, indent=2)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(report: Report) -> str:
    icon = ":white_check_mark:" if report.ok else ":x:"
    lines = [f"### {icon} modelops scan", "", _summary(report), ""]
    if report.verdicts:
        lines += ["| target | package | version | advisory | CVE | severity | fixed in | status |",
                  "|---|---|---|---|---|---|---|---|"]
        for v in report.verdicts:
            f = v.finding
            advisory = f"[{_cell(f.advisory)}]({f.url})" if f.url else _cell(f.advisory)
            status = v.status + (f": {v.note}" if v.note else "")
            lines.append(f"| {_cell(v.target)} | {_cell(f.package)} | {_cell(f.version)} | {advisory} | "
                         f"{_cell(f.cve)} | {f.severity} | {_cell(', '.join(f.fixed_versions))} | "
                         f"{_cell(status)} |")
        lines.append("")
    for p in report.problems:
        where = p.file + (f":{p.line}" if p.line else "")
        lines.append(f"- `{_cell(where)}` {_cell(p.field)}: {_cell(p.message)}")
    return "\n".join(lines).rstrip() + "\n"
