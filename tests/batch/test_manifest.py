"""`deployments.<env>.batch` in a manifest: the checks `score` makes at run time, made by `validate` at the field."""

from __future__ import annotations

import pytest
import yaml

from modelops.errors import ModelopsError
from modelops.manifest.loading import from_bytes
from tests.batch.conftest import DIABETES

BATCH = {"schedule": "0 2 * * *", "input": "s3://data-lake/diabetes/rows.parquet",
         "output": "s3://data-lake/diabetes/scored.parquet", "rejects": "s3://data-lake/diabetes/rejects.jsonl",
         "keep": ["patient_id"]}


def _load(**batch: object) -> None:
    data = yaml.safe_load((DIABETES / "model.yaml").read_text())
    data["deployments"]["production"]["batch"] = {**BATCH, **batch}
    from_bytes(yaml.safe_dump(data, sort_keys=False).encode(), DIABETES, "models/diabetes/model.yaml")


def test_a_batch_that_names_three_files_and_a_valid_cron_line_loads() -> None:
    _load()
    _load(schedule="0  2 * * *")  # cron separates its fields by any run of blanks
    _load(schedule="*/15\t0-6 * * 1,3")


@pytest.mark.parametrize(("batch", "field", "message"), [
    ({"output": BATCH["input"]}, "deployments.production.batch.output",
     "output is the same file as input, s3://data-lake/diabetes/rows.parquet"),
    ({"output": BATCH["rejects"]}, "deployments.production.batch.rejects",
     "rejects is the same file as output, s3://data-lake/diabetes/rejects.jsonl"),
    ({"input": BATCH["rejects"]}, "deployments.production.batch.rejects", "rejects is the same file as input"),
    ({"keep": ["patient_id", "bmi"]}, "deployments.production.batch.keep[1]",
     "'bmi' is a signature input: the output has it already"),
    ({"schedule": "0 2 * * *\n"}, "deployments.production.batch.schedule",
     "not a cron schedule: a control character (such as a newline) in the line"),
    ({"schedule": "@daily\n"}, "deployments.production.batch.schedule", "not a cron schedule"),
])
def test_what_score_would_refuse_is_refused_at_its_field(batch: dict, field: str, message: str) -> None:
    with pytest.raises(ModelopsError) as caught:
        _load(**batch)
    (problem,) = caught.value.problems
    assert (problem.field, problem.file) == (field, "models/diabetes/model.yaml")
    assert problem.message.startswith(message) and problem.hint and problem.line, problem


def test_a_batch_rejects_file_is_named_as_json_lines() -> None:
    with pytest.raises(ModelopsError) as caught:
        _load(rejects="s3://data-lake/diabetes/rejects.csv")
    (problem,) = caught.value.problems
    assert problem.field == "deployments.production.batch.rejects"
    assert problem.message.startswith("the rejects file is JSON Lines: its name ends in .jsonl")
    _load(rejects="s3://data-lake/diabetes/rejects.ndjson")
