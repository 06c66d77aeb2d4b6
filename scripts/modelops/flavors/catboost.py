"""catboost: a `.cbm` model file (`save_model('model.cbm')`) or an MLflow catboost model directory.

Loaded with catboost alone. A model trained with a classification loss is a classifier: its classes are the
labels it was trained on (CatBoost keeps them in the file); anything else predicts values. A model trained
with categorical features (`cat_features`) takes those columns as they are (a string, integer or long column
of the signature) and the others as floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor
from modelops.flavors.boosters import check_file, check_width, floats, mlflow_flavor, predictor

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
    rows = _rows(model.get_cat_feature_indices(), inputs, path.name)
    loss = str(model.get_params().get("loss_function", "RMSE"))
    if not is_classification_objective(loss):
        return predictor(model.predict, None, method, f"a model with loss {loss}", model, rows)

    def probabilities(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch, prediction_type="Probability")

    return predictor(probabilities, [_plain(c) for c in model.classes_], method, f"a model with loss {loss}",
                     model, rows)


_CATEGORY_TYPES = ("string", "integer", "long")  # what CatBoost takes as a category
_NUMBER_TYPES = ("double", "float", "integer", "long", "boolean")


def _rows(categorical: list[int], inputs: Sequence, name: str):  # -> Callable[[Any], np.ndarray]
    """How a batch becomes the model's rows: floats, or with categorical features an object array whose
    categorical columns are as sent (a whole number that came as a float, as in a batch of numbers, an int)
    and whose others are floats (nulls NaN). Each column's signature type must fit: a category is a required
    string, integer or long; any other feature a number (or a boolean)."""
    names = [column.name for j, column in enumerate(inputs) if j in categorical]
    for j, column in enumerate(inputs):
        kind = getattr(column, "type", None)  # None: a column known by its name alone (mlflow_entry)
        allowed = _CATEGORY_TYPES if j in categorical else _NUMBER_TYPES
        what = "a categorical feature" if j in categorical else "a numeric feature"
        if kind is not None and kind not in allowed:
            raise ModelopsError(f"{name}: input {column.name!r} is {what} of the model, and the signature types it "
                                f"{kind}", field="signature.inputs",
                                hint=f"type it {' or '.join(allowed)}; the model's categorical features are the "
                                     f"inputs {', '.join(names) or '(none)'}")
        if j in categorical and getattr(column, "required", True) is False:
            raise ModelopsError(f"{name}: input {column.name!r} is {what} of the model, which CatBoost cannot "
                                "take as null", field="signature.inputs",
                                hint="make it required (a missing category is a value of its own, such as '')")
    if not categorical:
        return floats
    numeric = [j for j in range(len(inputs)) if j not in categorical]

    def mixed(batch) -> np.ndarray:
        array = np.array(batch, dtype=object)
        if numeric:
            array[:, numeric] = floats(array[:, numeric])
        for j in categorical:
            array[:, j] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in array[:, j]]
        return array

    return mixed


def _plain(label):  # a class label as JSON has it (NumPy scalars become Python ones)
    return label.item() if isinstance(label, np.generic) else label
