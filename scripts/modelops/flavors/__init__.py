"""Flavors: how an artifact loads into something with `predict(2-D array in signature column order)`.

One module per framework, each with `load(path, inputs) -> Predictor`; FLAVORS names them (a new flavor is
one module plus one line here). A flavor module is imported only when a model of that flavor loads.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

# flavor name -> the module that loads it
FLAVORS = {
    "sklearn": "modelops.flavors.sklearn",
    "pyfunc": "modelops.flavors.pyfunc",
    "onnx": "modelops.flavors.onnx",
}


class Predictor(Protocol):
    def predict(self, batch: Any) -> Any: ...


def load(flavor: str, path: Path, inputs: Sequence) -> Predictor:
    """Load `path` with `flavor` (`inputs`: the signature's input columns); raises ModelopsError when the
    artifact is not of that flavor."""
    if flavor not in FLAVORS:
        from modelops.errors import ModelopsError

        raise ModelopsError(f"unknown flavor {flavor!r}", hint=f"allowed values are: {', '.join(FLAVORS)}")
    return importlib.import_module(FLAVORS[flavor]).load(path, inputs)
