"""Load an artifact into something with `predict(2-D array in signature column order) -> array`.

sklearn: an MLflow model directory (its `MLmodel` names the pickled model), a single `.skops` file
(types outside scikit-learn, NumPy and SciPy are refused), or a `.pkl`/`.joblib` file.
pyfunc: any MLflow model directory, through `mlflow.pyfunc` (the image then needs mlflow).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from modelops.errors import ModelopsError
from modelops.manifest.model import Column
from modelops.signature.types import NUMPY_DTYPES

_TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class Predictor(Protocol):
    def predict(self, batch: np.ndarray) -> Any: ...


def load(flavor: str, path: Path, inputs: list[Column]) -> Predictor:
    """Load `path` with `flavor`; raises ModelopsError when the artifact is not of that flavor."""
    if flavor == "pyfunc":
        return _PyfuncPredictor(path, inputs)
    if flavor == "sklearn":
        return _load_sklearn(path)
    raise ModelopsError(f"unknown flavor {flavor!r}", hint="allowed values are: sklearn, pyfunc")


def _load_sklearn(path: Path) -> Predictor:
    if path.is_dir():
        mlmodel = path / "MLmodel"
        if not mlmodel.is_file():
            raise ModelopsError(f"{path.name}/ has no MLmodel file", hint="save it with mlflow.sklearn.save_model")
        spec = yaml.safe_load(mlmodel.read_text()).get("flavors", {}).get("sklearn")
        if not spec:
            raise ModelopsError(f"{path.name}/MLmodel has no sklearn flavor", hint="use flavor: pyfunc")
        if spec.get("serialization_format", "cloudpickle") not in ("cloudpickle", "pickle"):
            raise ModelopsError(f"unsupported serialization {spec['serialization_format']!r}")
        with (path / spec["pickled_model"]).open("rb") as handle:
            return pickle.load(handle)  # cloudpickle output loads with pickle
    if path.suffix == ".skops":
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(_TRUSTED_SKOPS_PREFIXES)]
        if refused:
            raise ModelopsError(f"the skops file holds types outside scikit-learn: {', '.join(refused)}")
        return skops.io.load(path, trusted=untrusted)
    if path.suffix in (".pkl", ".pickle", ".joblib"):
        import joblib

        return joblib.load(path)
    raise ModelopsError(f"cannot tell how to load {path.name}",
                        hint="an MLflow model directory, a .skops, .pkl or .joblib file")


class _PyfuncPredictor:
    """Predicts on a DataFrame with one column per input, of the column type's dtype: what MLflow's schema
    enforcement accepts (it refuses to narrow the float64 of a mixed batch to a float, long or integer)."""

    def __init__(self, path: Path, inputs: list[Column]) -> None:
        import mlflow.pyfunc

        self._model = mlflow.pyfunc.load_model(str(path))
        self._inputs = inputs

    def predict(self, batch: np.ndarray) -> Any:
        import pandas as pd

        return self._model.predict(pd.DataFrame({c.name: _typed(batch[:, j], c.type)
                                                 for j, c in enumerate(self._inputs)}))


def _typed(values: np.ndarray, kind: str) -> np.ndarray:
    """`values` as the dtype of column type `kind`; nulls become NaN in a float or double column and leave
    any other column as it is (MLflow then says that it cannot hold them)."""
    dtype = NUMPY_DTYPES[kind]
    if dtype is object:
        return values
    nulls = [v is None for v in values] if values.dtype == object else []
    if any(nulls):
        if kind not in ("float", "double"):
            return values
        values = np.where(nulls, np.nan, values)
    return values.astype(dtype)
