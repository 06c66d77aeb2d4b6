"""The python_function entry point of a registered model whose MLflow flavor would not answer what the runner
serves: a booster's or a graph's class probabilities, a LightGBM classifier's labels.

`apply` copies this module into the registered model's `modelops-code` folder, with the flavor modules it uses,
as a package of a private name (`_modelops_` and a digest of their sources), and names it as the model's
`loader_module`; `mlflow.pyfunc.load_model` then predicts through the very flavor the runner loads, so plain
MLflow answers what the runner answers, whether or not a modelops is installed where it runs (the private name
shadows none, and models registered by two versions of modelops each load their own). Its `model_config` names
the flavor, the method and the signature's input columns in order. It needs what the flavor needs: numpy and
the framework (and PyYAML for an onnx directory), with pandas, as any `mlflow.pyfunc` model.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from modelops import flavors

CODE = "modelops-code"  # the model's folder that holds the copied package (put on sys.path by MLflow)
FLAVORS = ("xgboost", "lightgbm", "catboost", "onnx")  # the flavors this entry loads
_MODULES = ("__init__.py", "errors.py", "flavors/__init__.py", "flavors/boosters.py", "flavors/mlflow_entry.py",
            *(f"flavors/{flavor}.py" for flavor in FLAVORS))
_LOADER = re.compile(r"^_modelops_[0-9a-f]{12}\.flavors\.mlflow_entry$")
_IMPORTS = re.compile(r"\bmodelops(?=\.[a-z_]|\s+import\b)")  # `modelops.x` and `from modelops import`
_PLAIN_IMPORT = re.compile(r"^\s*(import|from)\s+modelops\b", re.MULTILINE)  # what the renaming must not leave


class _Column(NamedTuple):
    name: str


@cache
def _sources() -> dict[str, str]:
    package = Path(flavors.__file__).resolve().parents[1]
    return {name: (package / name).read_text(encoding="utf-8") for name in _MODULES}


def package() -> str:
    """The copied package's private name: `_modelops_` and the first 12 hex digits of its sources' sha256."""
    digest = hashlib.sha256()
    for name, text in _sources().items():
        digest.update(f"{name}\0{text}\0".encode())
    return f"_modelops_{digest.hexdigest()[:12]}"


def loader_module() -> str:
    """The `loader_module` of the copied entry."""
    return f"{package()}.flavors.mlflow_entry"


def is_loader(name: object) -> bool:
    """Whether an MLmodel's `loader_module` is a copy of this entry."""
    return isinstance(name, str) and bool(_LOADER.match(name))


def files() -> dict[str, str]:
    """The sources to write under CODE, by path, their imports of modelops renamed to the private package."""
    written = {f"{package()}/{name}": _IMPORTS.sub(package(), text) for name, text in _sources().items()}
    left = [name for name, text in written.items() if _PLAIN_IMPORT.search(text)]
    if left:
        raise RuntimeError(f"modelops imports left in the copied {', '.join(left)}")
    return written


def _load_pyfunc(path: str, model_config: dict) -> _Model:
    """Called by `mlflow.pyfunc.load_model`: `path` is the artifact (a file of the model, or the model itself)."""
    names = model_config["inputs"]
    predictor = flavors.load(model_config["flavor"], Path(path), [_Column(n) for n in names], model_config["method"])
    return _Model(predictor, names)


class _Model:
    """Predicts on a DataFrame (or a mapping of columns) as the runner does on its signature-ordered rows: an
    optional column that is left out is null in every row."""

    def __init__(self, predictor: flavors.Predictor, names: list[str]) -> None:
        self._predictor = predictor
        self._names = names

    def predict(self, data: Any, params: dict | None = None) -> np.ndarray:
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        present = [name for name in self._names if name in frame.columns]
        if len(present) == len(self._names) and all(frame[name].dtype.kind == "f" for name in present):
            return np.asarray(self._predictor.predict(frame[self._names].to_numpy(dtype=np.float64)))
        rows = np.full((len(frame), len(self._names)), None, dtype=object)
        for j, name in enumerate(self._names):
            if name in frame.columns:
                rows[:, j] = frame[name].to_numpy(dtype=object)
        return np.asarray(self._predictor.predict(rows))
