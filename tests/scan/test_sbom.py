"""SBOMs: `scan --environment` builds one with cyclonedx-py; `scan --sbom` scans a CycloneDX file."""

from __future__ import annotations

import json

from tests.scan.conftest import SAFETY_DB

DB = ("--db", str(SAFETY_DB))


def test_an_environment_is_scanned_through_its_sbom(tmp_path, modelops, environment):
    saved = tmp_path / "out" / "sbom.cdx.json"
    done = modelops("scan", *DB, "--environment", str(environment), "--save-sbom", str(saved))
    assert done.returncode == 1
    assert f"environment {environment}: jinja2==3.1.2: 64227 (CVE-2024-22195) [medium] FAIL" in done.stdout
    assert "1 target(s), 2 package(s)" in done.stdout
    document = json.loads(saved.read_text())
    assert document["bomFormat"] == "CycloneDX"
    assert {c["purl"] for c in document["components"]} == {"pkg:pypi/jinja2@3.1.2", "pkg:pypi/pyyaml@6.0.1"}
    again = json.loads(modelops("scan", *DB, "--sbom", str(saved), "--format", "json").stdout)
    assert again["targets"] == [str(saved)]
    found = [(f["package"], f["advisory"], f["status"]) for f in again["findings"]]
    assert found == [("jinja2", "64227", "fail")]


def test_a_file_that_is_not_an_sbom_is_refused(tmp_path, modelops):
    bogus = tmp_path / "bom.json"
    bogus.write_text(json.dumps({"spdxVersion": "SPDX-2.3"}))
    done = modelops("scan", *DB, "--sbom", str(bogus))
    assert done.returncode == 1
    assert f"{bogus}: not a CycloneDX JSON document (bomFormat is not CycloneDX)" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unversioned_package_is_never_passed_as_clean(tmp_path, modelops):
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
        {"type": "library", "name": "pyyaml", "purl": "pkg:pypi/pyyaml@6.0.1"},
        {"type": "library", "name": "mystery", "purl": "pkg:pypi/mystery"}]}))
    done = modelops("scan", *DB, "--sbom", str(bom))
    assert done.returncode == 1
    assert f"{bom}: components: pkg:pypi/mystery has no version, so it cannot be checked" in done.stderr
