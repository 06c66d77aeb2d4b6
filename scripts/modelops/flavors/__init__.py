"""Flavors: how an artifact loads into something with `predict(2-D array in signature column order)`.

One module per framework, each with `load(path, inputs, method="predict") -> Predictor`; FLAVORS names them
(a new flavor is one module plus one line here). A flavor module is imported only when a model of that
flavor loads. `method` is the manifest's: `predict` answers labels or values ([N] or [N, k]);
`predict_proba` answers float64 [N, classes], and the predictor's `classes` lists the class labels in
column order (None when the model cannot say). A flavor that cannot give probabilities raises
ModelopsError(field="method"). A module may name UNUSED_DEPENDENCIES: distributions its framework's wheel
requires but serving never imports, which images leave out.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# flavor name -> the module that loads it
FLAVORS = {
    "sklearn": "modelops.flavors.sklearn",
    "pyfunc": "modelops.flavors.pyfunc",
    "xgboost": "modelops.flavors.xgboost",
    "lightgbm": "modelops.flavors.lightgbm",
    "catboost": "modelops.flavors.catboost",
    "onnx": "modelops.flavors.onnx",
}

# The flavors whose predict is one call that releases the GIL throughout, on one core (ONNX Runtime with one
# intra-op thread): the runner gives them a predict thread per CPU, where the others leave one to its event loop.
WITHOUT_THE_GIL = {"onnx"}


class Predictor(Protocol):
    def predict(self, batch: Any) -> Any: ...


class Probabilities:
    """A predictor of class probabilities: `predict` answers float64 [N, classes], in `classes` order."""

    def __init__(self, predict_proba: Callable[[Any], Any], classes: Sequence | None, model: Any) -> None:
        self.model = model  # the framework's own object (what the compiled path converts)
        self._predict_proba = predict_proba
        self.classes = None if classes is None else np.asarray(classes).tolist()  # JSON-able: int, str

    def predict(self, batch: Any) -> np.ndarray:
        return np.asarray(self._predict_proba(batch), dtype=np.float64)


def load(flavor: str, path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """Load `path` with `flavor` (`inputs`: the signature's input columns) to answer `method`; raises
    ModelopsError when the artifact is not of that flavor or cannot answer `method`."""
    if flavor not in FLAVORS:
        from modelops.errors import ModelopsError

        raise ModelopsError(f"unknown flavor {flavor!r}", hint=f"allowed values are: {', '.join(FLAVORS)}")
    return importlib.import_module(FLAVORS[flavor]).load(path, inputs, method)
