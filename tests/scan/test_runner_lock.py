"""`modelops scan` also scans the runner's lock (what every image installs), with the same policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from modelops import locks
from modelops.scan.sources import RUNNER_DISPLAY
from tests.scan.conftest import SAFETY_DB, flagging

TODAY = datetime.now(UTC).date()
RUNNER = locks.load(locks.RUNNER)


def test_a_scan_of_the_models_covers_the_runner_lock(modelops):
    report = json.loads(modelops("scan", "--db", str(SAFETY_DB), "--format", "json").stdout)
    assert report["ok"] is True
    assert report["targets"] == ["models/iris", "runner"]
    assert report["packages"] == 3 + len(RUNNER)


def test_a_vulnerable_runner_package_fails_and_an_ignore_expires(repo, modelops, tmp_path):
    pin = RUNNER["fastapi"]
    db = flagging(tmp_path / "db", "fastapi", pin.version)
    done = modelops("scan", "--db", str(db))
    assert done.returncode == 1, done.stdout
    assert f"{RUNNER_DISPLAY}:{pin.line}: fastapi=={pin.version}: 99001 [unknown] FAIL" in done.stdout

    policy = repo / "models" / "scan-policy.yaml"
    ignore = "ignore:\n  - id: \"99001\"\n    package: fastapi\n    reason: not reachable\n    expires: {}\n"
    policy.write_text(ignore.format(TODAY + timedelta(days=7)))
    assert modelops("scan", "--db", str(db)).returncode == 0
    policy.write_text(ignore.format(TODAY - timedelta(days=1)))
    expired = modelops("scan", "--db", str(db))
    assert expired.returncode == 1
    assert f"FAIL: ignore expired on {TODAY - timedelta(days=1)}" in expired.stdout


def test_an_sbom_alone_is_scanned_without_the_runner_lock(modelops, environment, tmp_path):
    saved = tmp_path / "env.cdx.json"
    modelops("scan", "--db", str(SAFETY_DB), "--environment", str(environment), "--save-sbom", str(saved))
    report = json.loads(modelops("scan", "--db", str(SAFETY_DB), "--sbom", str(saved), "--format", "json").stdout)
    assert report["targets"] == [str(saved)]
