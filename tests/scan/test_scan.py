"""`modelops scan` against a local safety database and an OSV endpoint: no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.scan.conftest import SAFETY_DB, add_requirements

DB = ("--db", str(SAFETY_DB))
TODAY = datetime.now(UTC).date()


def write_policy(repo, text: str) -> None:
    (repo / "models" / "scan-policy.yaml").write_text(text)


def ignore_jinja(expires) -> str:
    return (f"ignore:\n  - id: \"64227\"\n    package: jinja2\n"
            f"    reason: templates never render user input\n    expires: {expires}\n")


def test_a_clean_model_passes(modelops):
    done = modelops("scan", *DB)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scan passed: 2 target(s), " in done.stdout and " 0 failing finding(s)" in done.stdout  # iris, the runner


def test_a_vulnerable_requirement_fails_naming_the_advisory(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    done = modelops("scan", *DB)
    assert done.returncode == 1
    assert ("models/iris/requirements.txt:4: jinja2==3.1.2: 64227 (CVE-2024-22195) [medium] FAIL"
            in done.stdout)
    assert "fixed in: 3.1.3" in done.stdout
    assert "Traceback" not in done.stderr


def test_json_normalises_the_finding(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2", "PyYAML==5.3.1")
    report = json.loads(modelops("scan", *DB, "--format", "json").stdout)
    assert report["ok"] is False
    found = {f["package"]: f for f in report["findings"]}
    assert set(found) == {"jinja2", "pyyaml"}
    assert {k: found["pyyaml"][k] for k in ("version", "advisory", "cve", "severity", "fixed_versions",
                                            "status", "line")} == {
        "version": "5.3.1", "advisory": "39611", "cve": "CVE-2020-14343", "severity": "critical",
        "fixed_versions": ["5.4"], "status": "fail", "line": 5}


def test_an_unexpired_ignore_passes(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    write_policy(repo, ignore_jinja(TODAY + timedelta(days=30)))
    done = modelops("scan", *DB)
    assert done.returncode == 0, done.stdout
    assert "IGNORED: templates never render user input" in done.stdout


def test_an_expired_ignore_fails(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    write_policy(repo, ignore_jinja(TODAY - timedelta(days=1)))
    done = modelops("scan", *DB)
    assert done.returncode == 1
    assert (f"models/scan-policy.yaml:5: ignore[0].expires: the ignore of 64227 expired on "
            f"{TODAY - timedelta(days=1)}") in done.stdout
    assert f"FAIL: ignore expired on {TODAY - timedelta(days=1)}" in done.stdout


def test_an_ignore_can_name_the_cve_in_pyproject(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    (repo / "pyproject.toml").write_text(
        "[tool.modelops.scan]\nignore = [{id = \"CVE-2024-22195\", reason = \"not reachable\", "
        f"expires = {TODAY + timedelta(days=7)}}}]\n")
    assert modelops("scan", *DB).returncode == 0
    write_policy(repo, "fail_severity: high\n")
    done = modelops("scan", *DB)
    assert done.returncode == 1
    assert "the scan policy is both in models/scan-policy.yaml and in [tool.modelops.scan]" in done.stderr


def test_the_failing_severity_lets_lower_findings_pass(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    write_policy(repo, "fail_severity: high\n")
    done = modelops("scan", *DB)
    assert done.returncode == 0, done.stdout
    assert "BELOW-THRESHOLD: severity below high" in done.stdout
    add_requirements(repo, "pyyaml==5.3.1")
    assert modelops("scan", *DB).returncode == 1


def test_an_unpinned_requirement_fails(repo, modelops):
    add_requirements(repo, "jinja2>=3", "pyyaml==5.*")
    done = modelops("scan", *DB)
    assert done.returncode == 1
    assert "models/iris/requirements.txt:4: requirements: 'jinja2>=3' is not pinned with ==" in done.stdout
    assert "models/iris/requirements.txt:5: requirements: 'pyyaml==5.*' is not pinned with ==" in done.stdout


def test_an_ignore_may_write_its_id_as_a_number(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    write_policy(repo, ignore_jinja(TODAY + timedelta(days=1)).replace('"64227"', "64227"))
    assert modelops("scan", *DB).returncode == 0


def test_the_safety_service_unreachable_is_an_error_not_a_pass(modelops):
    # Without --db, `safety check` first asks its authentication server: here, a closed local port.
    done = modelops("scan", env={"SAFETY_AUTH_SERVER_URL": "http://127.0.0.1:9"})
    assert done.returncode == 1
    assert "error: safety check failed (exit 1)" in done.stderr
    assert "hint: without network access, scan against a local database: modelops scan --db DIR" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("policy", "message"), [
    ("ignore:\n  - id: '1'\n    expires: 2030-01-01\n",
     "models/scan-policy.yaml:2: ignore[0].reason: field required"),
    ("fail_severity: severe\n",
     "models/scan-policy.yaml:1: fail_severity: input should be 'low', 'medium'"),
    ("ignore:\n  - {id: '1', reason: r, expires: someday}\n",
     "ignore[0].expires: input should be a valid date"),
    ("ignores: []\n", "models/scan-policy.yaml:1: ignores: extra inputs are not permitted"),
    ("", "models/scan-policy.yaml: the file is empty\n  hint: write the policy (docs/ci.md), or delete the file"),
])
def test_a_bad_policy_is_named(repo, modelops, policy, message):
    write_policy(repo, policy)
    done = modelops("scan", *DB)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_markdown_is_a_table_for_the_pull_request(repo, modelops):
    add_requirements(repo, "jinja2==3.1.2")
    done = modelops("scan", *DB, "--format", "markdown")
    assert done.stdout.startswith("### :x: modelops scan\n")
    assert ("| models/iris | jinja2 | 3.1.2 | [64227](https://data.safetycli.com/v/64227/97c) "
            "| CVE-2024-22195 | medium | 3.1.3 | fail |") in done.stdout


def test_a_database_of_another_schema_is_refused(tmp_path, modelops):
    db = tmp_path / "db"
    db.mkdir()
    for name in ("insecure.json", "insecure_full.json"):
        (db / name).write_text(json.dumps({"meta": {"schema_version": "1.0.0"}, "vulnerable_packages": {}}))
    done = modelops("scan", "--db", str(db))
    assert done.returncode == 1
    assert "insecure.json: schema version '1.0.0' is not supported" in done.stderr
    (db / "insecure_full.json").unlink()
    (db / "insecure.json").write_text((SAFETY_DB / "insecure.json").read_text())
    done = modelops("scan", "--db", str(db))
    assert "insecure_full.json is missing from the database folder" in done.stderr


def test_pip_audit_finds_the_advisory_through_osv(repo, modelops, osv_url):
    add_requirements(repo, "jinja2==3.1.2")
    audit = ("scan", "--engine", "pip-audit", "--osv-url", osv_url)
    report = json.loads(modelops(*audit, "--format", "json").stdout)
    assert report["ok"] is False
    assert report["source"] == f"OSV at {osv_url}"
    [finding] = report["findings"]
    assert (finding["package"], finding["advisory"], finding["cve"], finding["fixed_versions"]) == (
        "jinja2", "CVE-2024-22195", "CVE-2024-22195", ["3.1.3"])
    write_policy(repo, ignore_jinja(TODAY + timedelta(days=1)).replace('"64227"', "GHSA-h5c8-rqwp-cp95"))
    assert modelops(*audit).returncode == 0


def test_pip_audit_never_reports_unchecked_packages_as_clean(modelops, osv_url):
    closed = osv_url.rsplit(":", 1)[0] + ":9/v1/query"  # the discard port: nothing listens there
    done = modelops("scan", "--engine", "pip-audit", "--osv-url", closed)
    assert done.returncode == 1
    assert "error: pip-audit could not check the packages" in done.stderr
    assert "scan passed" not in done.stdout


def test_options_of_the_other_engine_are_refused(modelops):
    done = modelops("scan", "--engine", "pip-audit", *DB)
    assert done.returncode == 1
    assert "error: --db is a safety database" in done.stderr
