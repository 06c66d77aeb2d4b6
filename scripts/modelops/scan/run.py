"""One scan: targets (model folders, SBOMs) through an engine, judged by the policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from modelops.errors import ModelopsError, Problem
from modelops.manifest.loading import LoadedManifest
from modelops.scan import policy as policies
from modelops.scan import sources
from modelops.scan.engines import Engine
from modelops.scan.findings import Package
from modelops.scan.policy import LoadedPolicy, Verdict


@dataclass
class Report:
    """Everything a scan found, and whether the policy accepts it."""

    engine: str
    source: str
    policy: str
    targets: list[str] = field(default_factory=list)
    packages: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failures


def scan(folders: list[Path], sboms: list[tuple[str, Path]], load: Callable[[Path], LoadedManifest], engine: Engine,
         loaded: LoadedPolicy, on: date) -> Report:
    """Scan each model's requirements (manifests read with `load`), the runner's lock (unless only SBOMs are
    scanned) and each (display name, path) SBOM; expired ignores come first."""
    report = Report(engine=engine.name, source=engine.source, policy=loaded.file)
    report.problems += policies.expired(loaded, on)
    for folder in folders:
        try:
            model = load(folder)
        except ModelopsError as exc:
            report.problems += exc.problems
            continue
        target = Path(model.display).parent.as_posix()
        try:
            packages, problems = sources.requirements(model)
        except ModelopsError as exc:
            report.problems += exc.problems
            continue
        report.problems += problems
        _audit(report, target, packages, engine, loaded, on)
    if folders or not sboms:  # the models' images all install the runner's lock
        try:
            _audit(report, "runner", sources.runner(), engine, loaded, on)
        except ModelopsError as exc:
            report.problems += exc.problems
    for display, path in sboms:
        _audit(report, display, sources.sbom(path, display), engine, loaded, on)
    return report


def _audit(report: Report, target: str, packages: list[Package], engine: Engine, loaded: LoadedPolicy,
           on: date) -> None:
    report.targets.append(target)
    report.packages += len(packages)
    declared = {p.name: p for p in packages}
    for finding in sorted(engine.audit(packages), key=lambda f: (f.package, f.advisory)):
        package = declared.get(finding.package)
        status, note = policies.judge(finding, loaded.policy, on)
        report.verdicts.append(Verdict(target=target, file=package.file if package else target,
                                       line=package.line if package else None, finding=finding,
                                       status=status, note=note))
