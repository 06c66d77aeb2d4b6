"""The python_function entry point of a registered model whose MLflow flavor would not answer what the runner
serves: a booster's or a graph's class probabilities, a LightGBM classifier's labels.

`apply` copies this module into the registered model's `code` folder, with the modelops flavor modules it uses,
and names it as the model's `loader_module`; `mlflow.pyfunc.load_model` then predicts through the very flavor
the runner loads, so plain MLflow answers what the runner answers. Its `model_config` names the flavor, the
method and the signature's input columns in order. It needs what the flavor needs: numpy and the framework
(and PyYAML for an onnx directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from modelops import flavors

CODE = "modelops-code"  # the model's folder that holds the copied modules (put on sys.path by MLflow)
LOADER = __name__


class _Column(NamedTuple):
    name: str


FLAVORS = ("xgboost", "lightgbm", "catboost", "onnx")  # the flavors this entry loads


def files() -> dict[str, Path]:
    """The modules to copy, by their path under CODE: those of every flavor the entry loads, whichever the model's,
    since a process imports the package once, from the first model it loads (each flavor imports its framework
    only when a model of that flavor loads)."""
    package = Path(flavors.__file__).resolve().parents[1]
    names = ("__init__.py", "errors.py", "flavors/__init__.py", "flavors/boosters.py", "flavors/mlflow_entry.py",
             *(f"flavors/{flavor}.py" for flavor in FLAVORS))
    return {f"modelops/{name}": package / name for name in names}


def _load_pyfunc(path: str, model_config: dict) -> _Model:
    """Called by `mlflow.pyfunc.load_model`: `path` is the artifact (a file of the model, or the model itself)."""
    names = model_config["inputs"]
    predictor = flavors.load(model_config["flavor"], Path(path), [_Column(n) for n in names], model_config["method"])
    return _Model(predictor, names)


class _Model:
    """Predicts on a DataFrame (or a mapping of columns) as the runner does on its signature-ordered rows."""

    def __init__(self, predictor: flavors.Predictor, names: list[str]) -> None:
        self._predictor = predictor
        self._names = names

    def get_raw_model(self) -> Any:
        """The framework's own model object."""
        return self._predictor.model

    def predict(self, data: Any, params: dict | None = None) -> np.ndarray:
        columns = [np.asarray(data[name]) for name in self._names]
        return np.asarray(self._predictor.predict(np.column_stack(columns)))
