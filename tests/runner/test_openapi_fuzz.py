"""schemathesis generates requests from /openapi.json against a real server: no 5xx, no schema violation.

Every check runs on every operation: answers must match their documented status, type and body;
requests the schema calls invalid must be refused; requests it calls valid must be accepted, where
"accepted" includes 422 (the model itself refusing a value, e.g. a double it casts to float32).
The only exception: `positive_data_acceptance` is off for the two protocol payloads, /invocations and
/v2 .../infer, whose JSON Schemas cannot say that a row has one value per column or that `data` fits
`shape`; the typed /predict carries the exact contract and is checked both ways.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2XX", "422"]

[[operations]]
include-path-regex = "^/(invocations|v2/models/[^/]+(/versions/[^/]+)?/infer)$"
checks.positive_data_acceptance.enabled = false
"""


def test_no_server_error_and_no_schema_violation(iris_production: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{iris_production.base_url}/openapi.json",
               "--max-examples", "40", "--seed", "20261126", "--phases", "examples,coverage,fuzzing,stateful",
               "--no-color"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=480, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    assert "Selected: 16/16" in done.stdout
