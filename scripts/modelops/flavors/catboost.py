"""catboost: a `.cbm` model file (`save_model('model.cbm')`) or an MLflow catboost model directory.

Loaded with catboost alone. A model trained with a classification loss is a classifier: its classes are the
labels it was trained on (CatBoost keeps them in the file); anything else predicts values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor
from modelops.flavors.boosters import check_file, check_width, mlflow_flavor, predictor

FORMS = "a .cbm model file (save_model('model.cbm')), or an MLflow catboost model directory"
# What catboost's wheel declares for its plots and widgets, which predicting never imports: images leave them
# out (unless the model's requirements pin one of them).
UNUSED_DEPENDENCIES = ("matplotlib", "plotly", "graphviz", "contourpy", "cycler", "fonttools", "kiwisolver",
                       "pillow", "pyparsing")


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """The CatBoost model in `path`, predicting on arrays of the signature's `inputs` columns."""
    import catboost
    from catboost.core import is_classification_objective

    fmt = "cbm"
    if path.is_dir():
        spec = mlflow_flavor(path, "catboost")
        path, fmt = spec["data"], spec.get("save_format", "cbm")
        if fmt != "cbm":
            raise ModelopsError(f"{path.name}: save_format {fmt!r} is not served",
                                hint="save the model in CatBoost's own format (cbm)")
    check_file(path, "catboost", FORMS)
    model = catboost.CatBoost()
    try:
        model.load_model(str(path), format=fmt)
    except catboost.CatBoostError as exc:
        raise ModelopsError(f"{path.name} does not load as a CatBoost model: {str(exc).splitlines()[0][:200]}",
                            hint=f"the file is damaged or not CatBoost's; {FORMS}") from None
    check_width(f"the model {path.name}", len(model.feature_names_), inputs)
    loss = str(model.get_params().get("loss_function", "RMSE"))
    if not is_classification_objective(loss):
        return predictor(model.predict, None, method, f"a model with loss {loss}", model)

    def probabilities(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch, prediction_type="Probability")

    return predictor(probabilities, [_plain(c) for c in model.classes_], method, f"a model with loss {loss}",
                     model)


def _plain(label):  # a class label as JSON has it (NumPy scalars become Python ones)
    return label.item() if isinstance(label, np.generic) else label
