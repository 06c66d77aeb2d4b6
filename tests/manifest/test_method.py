"""`method` and the output `label`s: schema-level mistakes are located (file, line, field) with a hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.manifest.test_validate_bad_manifests import sub

PROBA = "models/iris-proba/model.yaml"
SETOSA = "{name: p_setosa, type: double, label: setosa}"

# (id, edit, line, field, message, hint)
CASES = [
    ("unknown method", sub("method: predict_proba", "method: transform", PROBA), 6, "method",
     "'transform' is not allowed", "allowed values are: 'predict' or 'predict_proba'"),
    ("label with predict", sub("method: predict_proba", "method: predict", PROBA), 14, "signature.outputs[0].label",
     "a label names the class of a probability column", "remove it, or set method: predict_proba"),
    ("probability not a double", sub(SETOSA, "{name: p_setosa, type: float, label: setosa}", PROBA), 14,
     "signature.outputs[0].type", "float with method: predict_proba", "a probability column is a double"),
    ("missing label", sub(SETOSA, "{name: p_setosa, type: double}", PROBA), 14, "signature.outputs[0]",
     "output 'p_setosa' names no class label", "add label: <the class>, in the model's class order (classes_)"),
    ("label twice", sub("label: versicolor", "label: setosa", PROBA), 15, "signature.outputs[1].label",
     "label 'setosa' is also outputs[0]'s", "one column per class: give each its own label"),
    ("label neither a string nor an integer", sub("label: setosa", "label: 1.5", PROBA), 14,
     "signature.outputs[0].label", "a class label is a string or an integer (got 1.5)",
     "write the class as the model's classes_ hold it"),
    ("label true", sub("label: setosa", "label: true", PROBA), 14, "signature.outputs[0].label",
     "a class label is a string or an integer (got True)", "write the class as the model's classes_ hold it (quote"),
    ("label on an input", sub("{name: sepal_length, type: double}", "{name: sepal_length, type: double, label: a}",
                              PROBA), 9, "signature.inputs[0].label", "unknown field", ""),
    ("label with braces is quoted as it is", lambda repo: (sub("label: setosa", "label: '{hint}'", PROBA)(repo),
                                                           sub("label: versicolor", "label: '{hint}'", PROBA)(repo)),
     15, "signature.outputs[1].label", "label '{hint}' is also outputs[0]'s", ""),
]


@pytest.mark.parametrize(("edit", "line", "field", "message", "hint"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_method_or_label_mistake_is_located(repo: Path, edit, line: int, field: str, message: str,
                                              hint: str) -> None:
    edit(repo)
    result = run_cli("validate", "--offline", "models/iris-proba", cwd=repo)
    assert result.code == 1, result.out
    assert "Traceback" not in result.err
    assert f"{PROBA}:{line}: {field}: {message}" in result.err, result.err
    if hint:
        assert f"hint: {hint}" in result.err, result.err


def test_the_schema_shows_method_and_labels() -> None:
    result = run_cli("schema", cwd=ROOT)
    schema = json.loads(result.out)
    assert schema["properties"]["method"]["enum"] == ["predict", "predict_proba"]
    assert schema["properties"]["method"]["default"] == "predict"
    label = schema["$defs"]["OutputColumn"]["properties"]["label"]
    assert [kind.get("type") for kind in label["anyOf"]] == ["string", "integer", "null"]
    (rule,) = schema["allOf"]
    assert rule["if"]["properties"]["method"] == {"const": "predict_proba"}
    outputs = rule["then"]["properties"]["signature"]["properties"]["outputs"]["items"]
    assert outputs == {"properties": {"type": {"const": "double"}}, "required": ["label"]}
