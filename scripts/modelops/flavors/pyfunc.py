"""pyfunc: any MLflow model directory, through `mlflow.pyfunc` (the image then needs mlflow).

`method: predict_proba` is served when the MLmodel says so itself (`predict_fn: predict_proba` in its
python_function flavor, as `mlflow.sklearn.save_model(..., pyfunc_predict_fn="predict_proba")` writes):
then MLflow's predict answers the probabilities; the classes are the raw model's `classes_`, if it has any.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor, Probabilities
from modelops.signature.types import NUMPY_DTYPES


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """The MLflow model in `path`, predicting on DataFrames of the signature's `inputs` columns."""
    predictor = _PyfuncPredictor(path, inputs)
    if method == "predict":
        return predictor
    from modelops.flavors.python_function import answered_method

    predict_fn = answered_method({"flavors": predictor.model.metadata.flavors})
    if predict_fn != method:
        raise ModelopsError(f"its MLmodel serves {predict_fn}, not {method}", field="method",
                            hint="save it with mlflow.sklearn.save_model(..., pyfunc_predict_fn='predict_proba'), "
                                 "or use the framework's own flavor (e.g. flavor: sklearn)")
    try:
        classes = getattr(predictor.model.get_raw_model(), "classes_", None)
    except NotImplementedError:  # a custom PythonModel: it cannot say
        classes = None
    return Probabilities(predictor.predict, classes, predictor)


class _PyfuncPredictor:
    """Predicts on a DataFrame with one column per input, of the column type's dtype: what MLflow's schema
    enforcement accepts (it refuses to narrow the float64 of a mixed batch to a float, long or integer)."""

    def __init__(self, path: Path, inputs: Sequence) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(str(path))
        self._inputs = inputs

    def predict(self, batch: np.ndarray) -> Any:
        import pandas as pd

        return self.model.predict(pd.DataFrame({c.name: _typed(batch[:, j], c.type)
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
