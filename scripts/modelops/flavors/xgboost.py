"""xgboost: a booster file (`.ubj` or `.json`, as `save_model` writes) or an MLflow xgboost model directory.

Loaded with xgboost alone. The objective says what the booster is: `binary:*` and `multi:*` are classifiers
(classes 0..k-1, as xgboost's scikit-learn classifier has them), anything else predicts values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor
from modelops.flavors.boosters import check_file, check_width, mlflow_flavor, predictor, two_columns

FORMS = "a .ubj or .json booster file (Booster.save_model), or an MLflow xgboost model directory"
SUFFIXES = (".ubj", ".json")
# objectives whose plain output is already a probability (the others give margins, or labels)
_PROBABILITY_OUTPUT = ("binary:logistic", "multi:softprob")


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """The booster in `path`, predicting on arrays of the signature's `inputs` columns."""
    import xgboost

    file = mlflow_flavor(path, "xgboost")["data"] if path.is_dir() else path
    check_file(file, "xgboost", FORMS)
    if file.suffix not in SUFFIXES:
        raise ModelopsError(f"{file.name}: an XGBoost booster file ends in .ubj or .json",
                            hint=f"save it with Booster.save_model('model.ubj'): {FORMS}")
    booster = xgboost.Booster()
    try:
        booster.load_model(str(file))
        config = json.loads(booster.save_config())["learner"]
    except (xgboost.core.XGBoostError, ValueError, KeyError) as exc:
        reason = re.sub(r"^\[[\d:]+\] \S+: ", "", str(exc).splitlines()[0])[:200]  # no time and C++ source
        raise ModelopsError(f"{file.name} does not load as an XGBoost booster: {reason}",
                            hint=f"the file is damaged or not xgboost's; {FORMS}") from None
    check_width(f"the booster {file.name}", booster.num_features(), inputs)
    objective = config["objective"]["name"]
    if not objective.startswith(("binary:", "multi:")):
        return predictor(booster.inplace_predict, None, method, f"a booster with objective {objective}", booster)
    if method == "predict_proba" and objective == "binary:hinge":
        raise ModelopsError("method: predict_proba needs probabilities, and objective binary:hinge gives none",
                            field="method", hint="train with binary:logistic, or use method: predict")
    classes = int(config["learner_model_param"].get("num_class", "0")) or 2

    def probabilities(batch: np.ndarray) -> np.ndarray:
        if objective in _PROBABILITY_OUTPUT:
            p = booster.inplace_predict(batch)
        else:
            p = booster.inplace_predict(batch, predict_type="margin")
            if objective.startswith("multi:"):
                p = np.exp(p - p.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
            else:
                p = 1.0 / (1.0 + np.exp(-p))
        return p if objective.startswith("multi:") else two_columns(p)

    return predictor(probabilities, list(range(classes)), method, f"a booster with objective {objective}",
                     booster)
