"""What a manifest takes from an MLflow model directory registered with plain MLflow: the flavors that load
it, its signature as manifest columns, its input example as records, and its pinned requirements.

Read as data only (the MLmodel is YAML, the example JSON): nothing here loads the model, which only the
sandbox of `validate` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from modelops.errors import ModelopsError
from modelops.flavors.python_function import answered_method
from modelops.manifest.model import METHODS, Column
from modelops.signature.probabilities import PREDICT_PROBA

MAX_EXAMPLE_ROWS = 10  # rows of the logged input example kept as the model's example
# MLflow's own package: what a runner image never needs (flavor pyfunc serves through mlflow-skinny)
_MLFLOW = ("mlflow", "mlflow-skinny")


@dataclass(frozen=True)
class Reading:
    """One MLflow model directory, as a manifest would hold it."""

    flavors: tuple[str, ...]  # the manifest flavors that load it, its framework's own first
    mlflow_flavors: tuple[str, ...]  # the flavors its MLmodel lists
    method: str  # what its python_function answers: predict, predict_proba (one probability per class), or
    # a method a manifest cannot serve (decision_function)
    signature: dict | None  # {"inputs": [...], "outputs": [...]} as manifest columns; None: see `problem`.
    # With predict_proba, "outputs" is None unless they are columns: the classes make them (classes_read)
    problem: str  # why the signature cannot be a manifest's ("" when it can)
    example: list[dict] | None  # the logged input example's first rows, as records (None: it has none)
    requirements: tuple[str, ...]  # its requirements.txt lines, MLflow's own package as the flavor needs it
    mlflow_version: str  # the MLflow that saved it ("" when the MLmodel does not say)


def read(folder: Path, label: str) -> Reading:
    """The reading of the MLflow model directory `folder`; `label` names it in errors (`models:/churn/3`)."""
    spec = _mlmodel(folder, label)
    flavors = spec.get("flavors") if isinstance(spec.get("flavors"), dict) else {}
    method = answered_method(spec)
    signature, problem = _signature(spec.get("signature"), method)
    return Reading(flavors=_loaders(flavors), mlflow_flavors=tuple(map(str, flavors)), method=method,
                   signature=signature, problem=problem,
                   example=_example(folder, spec.get("saved_input_example_info")),
                   requirements=_requirements(folder), mlflow_version=str(spec.get("mlflow_version") or ""))


def requirements_for(reading: Reading, flavor: str, pandas_version: str) -> list[str]:
    """The requirements a model folder of `flavor` pins: the directory's, without MLflow's own package (it
    serves without it), except for pyfunc, which gets mlflow-skinny (and pandas) at the saving version."""
    lines = [line for line in reading.requirements if _package(line) not in _MLFLOW]
    if flavor != "pyfunc":
        return lines
    if reading.mlflow_version:
        lines.insert(0, f"mlflow-skinny=={reading.mlflow_version}")
    if not any(_package(line) == "pandas" for line in lines):
        lines.append(f"pandas=={pandas_version}")
    return lines


def _mlmodel(folder: Path, label: str) -> dict:
    path = folder / "MLmodel"
    if not folder.is_dir() or not path.is_file():
        raise ModelopsError(f"{label} is not an MLflow model directory (no MLmodel file)",
                            hint="register models logged with mlflow.<flavor>.log_model")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelopsError(f"{label}: its MLmodel file is not YAML: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(spec, dict):
        raise ModelopsError(f"{label}: its MLmodel file is not a mapping")
    return spec


def _loaders(flavors: dict) -> tuple[str, ...]:
    """The manifest flavors that load a directory with these MLflow flavors; pyfunc last (its image needs
    mlflow-skinny), and only when MLflow's predict answers predictions or probabilities."""
    def section(name: str) -> dict:
        found = flavors.get(name)
        return found if isinstance(found, dict) else {}

    found = []
    sklearn = section("sklearn")
    if sklearn and sklearn.get("serialization_format", "cloudpickle") in ("cloudpickle", "pickle"):
        found.append("sklearn")  # skops files inside a directory load through pyfunc
    if str(section("xgboost").get("data", "")).endswith((".ubj", ".json")):
        found.append("xgboost")
    if section("lightgbm").get("data"):
        found.append("lightgbm")
    if section("catboost").get("data") and section("catboost").get("save_format", "cbm") == "cbm":
        found.append("catboost")
    if section("onnx").get("data"):
        found.append("onnx")
    if section("python_function") and section("python_function").get("predict_fn", "predict") in METHODS:
        found.append("pyfunc")
    return tuple(found)


def _signature(spec: object, method: str) -> tuple[dict | None, str]:
    """The manifest's signature of an MLmodel's `signature` section, or None and why not. Probabilities
    need input columns only: outputs that are not columns are None."""
    probabilities = method == PREDICT_PROBA
    if not isinstance(spec, dict) or not spec.get("inputs") or not (spec.get("outputs") or probabilities):
        return None, "it was logged without a signature (inputs and outputs)"
    inputs, problem = _columns(spec["inputs"], "inputs")
    if inputs is None:
        return None, problem
    outputs, problem = _columns(spec.get("outputs"), "outputs")
    if outputs is None and not probabilities:
        return None, problem
    return {"inputs": inputs, "outputs": outputs}, ""


def _columns(text: object, side: str) -> tuple[list[dict] | None, str]:
    """One side of an MLmodel's signature as manifest columns, or None and why not."""
    try:
        columns = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"its signature's {side} are not MLflow's JSON column specs"
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        return None, f"its signature's {side} are not MLflow's JSON column specs"
    unnamed = sum("name" not in c for c in columns)
    out = []
    for i, column in enumerate(columns):
        if column.get("type") == "tensor":
            return None, f"its signature's {side} are tensors; a manifest's signature is columns"
        name = column.get("name", "prediction" if unnamed == 1 else f"prediction_{i}")
        entry = {"name": name, "type": column.get("type")}
        if column.get("required", True) is False:
            entry["required"] = False
        try:
            Column.model_validate(entry)
        except ValidationError:
            return None, (f"its signature's {side}[{i}] {json.dumps(name)} of type {json.dumps(entry['type'])} "
                          "is not a manifest column (a name of letters, digits, _ . -, starting with a letter or "
                          "_; a type of boolean, integer, long, float, double, string, binary, datetime)")
        out.append(entry)
    return out, ""


def _example(folder: Path, info: object) -> list[dict] | None:
    """The first rows of the logged input example, when it is a DataFrame saved as JSON (split or records)."""
    if not isinstance(info, dict) or info.get("type") != "dataframe" or not isinstance(info.get("artifact_path"), str):
        return None
    path = (folder / info["artifact_path"]).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("data"), list):
        records = [dict(zip(data["columns"], row, strict=False)) for row in data["data"] if isinstance(row, list)]
    elif isinstance(data, list) and all(isinstance(row, dict) for row in data):
        records = data
    else:
        return None
    return records[:MAX_EXAMPLE_ROWS] or None


def _requirements(folder: Path) -> tuple[str, ...]:
    path = folder / "requirements.txt"
    if not path.is_file():
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _package(line: str) -> str:
    """The normalised name a requirement line installs (`Scikit_Learn==1.0` -> scikit-learn)."""
    from packaging.utils import canonicalize_name

    name = line.split(";")[0]
    for mark in ("[", "=", "<", ">", "!", "~", " ", "@"):
        name = name.split(mark)[0]
    return canonicalize_name(name)
