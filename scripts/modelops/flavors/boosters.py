"""What the gradient-boosting flavors (xgboost, lightgbm, catboost) share: telling their files apart, reading
an MLflow model directory's flavor section, and the predictor that serves values, labels or probabilities.

A booster predicts on floats; a classifier's labels are its classes at the most probable column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor

METHODS = ("predict", "predict_proba")
# flavor -> what its files are called in messages
NAMES = {"xgboost": "an XGBoost booster", "lightgbm": "a LightGBM model", "catboost": "a CatBoost model",
         "sklearn": "a pickle", "onnx": "an ONNX graph"}


def framework_of(path: Path) -> str | None:
    """The flavor whose file `path` looks like, from its first bytes (None: none of them)."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if head.startswith(b"CBM1"):
        return "catboost"
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"{") and b"learner" in head:
        return "xgboost"
    if head.startswith(b"\x80") or path.suffix in (".pkl", ".pickle", ".joblib", ".skops"):
        return "sklearn"
    if path.suffix == ".onnx":
        return "onnx"
    return None


def check_file(path: Path, flavor: str, hint: str) -> None:
    """Refuse a file that is not a regular file, or that is another framework's model."""
    if not path.is_file():
        raise ModelopsError(f"{path.name} is not a file", hint=hint)
    found = framework_of(path)
    if found and found != flavor:
        raise ModelopsError(f"{path.name} is {NAMES[found]}, not {NAMES[flavor]}",
                            hint=f"use flavor: {found}, or give {hint}")


def mlflow_flavor(path: Path, flavor: str) -> dict:
    """The `flavor` section of the MLmodel of the MLflow model directory `path`."""
    import yaml

    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise ModelopsError(f"{path.name}/ has no MLmodel file", hint=f"save it with mlflow.{flavor}.save_model")
    try:
        spec = yaml.safe_load(mlmodel.read_text()).get("flavors", {}).get(flavor)
    except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
        raise ModelopsError(f"{path.name}/MLmodel has no {flavor} flavor with a data file",
                            hint=f"save it with mlflow.{flavor}.save_model, or use flavor: pyfunc")
    data = (path / spec["data"]).resolve()
    if not data.is_relative_to(path.resolve()) or not data.is_file():
        raise ModelopsError(f"{path.name}/MLmodel: flavors.{flavor}.data {spec['data']!r} is not a file in the model",
                            hint=f"save it with mlflow.{flavor}.save_model")
    return {**spec, "data": data}


def floats(batch: Any) -> np.ndarray:
    """A 2-D float64 array of `batch`, nulls as NaN (what boosters take as missing)."""
    array = np.asarray(batch)
    if array.dtype == object:
        array = np.where(np.equal(array, None), np.nan, array)
    return array.astype(np.float64, copy=False)


def check_width(name: str, features: int, inputs: Sequence) -> None:
    """The model must take as many features as the signature has input columns."""
    if features != len(inputs):
        raise ModelopsError(f"{name} takes {features} features, the signature has {len(inputs)} input columns",
                            hint="list one signature input per feature, in the order the model was trained on")


class BoosterPredictor:
    """A regressor's values, or a classifier's labels or class probabilities."""

    def __init__(self, score: Callable[[np.ndarray], np.ndarray], classes: list | None, method: str,
                 model: Any, rows: Callable[[Any], np.ndarray] = floats) -> None:
        self.model = model  # the framework's own object (what the compiled path converts)
        self._rows = rows  # the batch as the model takes it (floats, unless it has categorical features)
        self._score = score  # rows -> values (regressor) or probabilities [N, classes] (classifier)
        self.classes = classes
        self._labels = np.asarray(classes) if classes is not None else None
        self._proba = method == "predict_proba"

    def predict(self, batch: Any) -> np.ndarray:
        scores = self._score(self._rows(batch))
        if self._labels is None:
            return scores
        if self._proba:
            return scores.astype(np.float64, copy=False)
        return self._labels[np.argmax(scores, axis=1)]


def predictor(score: Callable[[np.ndarray], np.ndarray], classes: list | None, method: str, what: str,
              model: Any, rows: Callable[[Any], np.ndarray] = floats) -> Predictor:
    """The predictor of `method` over `model`; `classes` None: a regressor (`what` says what it is, for the
    message); `rows` makes the batch what `score` takes."""
    if method not in METHODS:
        raise ModelopsError(f"unknown method {method!r}", field="method",
                            hint=f"allowed values are: {', '.join(METHODS)}")
    if method == "predict_proba" and classes is None:
        raise ModelopsError(f"method: predict_proba needs a classifier, and {what} is not one", field="method",
                            hint="use method: predict for a regressor (its values)")
    return BoosterPredictor(score, classes, method, model, rows)


def two_columns(p: np.ndarray) -> np.ndarray:
    """A binary classifier's [N] probabilities of class 1 as [N, 2]."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    return np.column_stack([1.0 - p, p])
