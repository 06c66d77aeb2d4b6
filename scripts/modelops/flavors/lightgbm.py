"""lightgbm: a model text file (`Booster.save_model('model.txt')`) or an MLflow lightgbm model directory
(a booster, or a pickled scikit-learn wrapper such as LGBMClassifier, whose classes it keeps).

Loaded with lightgbm alone. The objective says what the model is: binary, multiclass and multiclassova are
classifiers (classes 0..k-1 unless a scikit-learn wrapper names them), anything else predicts values.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors import Predictor
from modelops.flavors.boosters import check_file, check_width, mlflow_flavor, predictor, two_columns

FORMS = "a model text file (Booster.save_model('model.txt')), or an MLflow lightgbm model directory"
_CLASSIFIERS = ("binary", "multiclass", "multiclassova")
_END = "end of trees"  # the line after the last tree of a complete model file


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """The LightGBM model in `path`, predicting on arrays of the signature's `inputs` columns."""
    try:
        import lightgbm  # noqa: F401  (its wheel needs the system's OpenMP runtime)
    except OSError as exc:
        raise ModelopsError(f"lightgbm does not load: {exc}",
                            hint="LightGBM needs the OpenMP runtime libgomp.so.1 in the base image (Debian: "
                                 "apt-get install libgomp1; scripts/ci/base-image.sh includes it)") from None
    if path.is_dir():
        spec = mlflow_flavor(path, "lightgbm")
        if spec.get("model_class", "lightgbm.basic.Booster") != "lightgbm.basic.Booster":
            return _wrapper(spec, inputs, method)
        path = spec["data"]
    check_file(path, "lightgbm", FORMS)
    return _predictor(_booster(path), path.name, inputs, method, None)


def _booster(path: Path):  # -> lightgbm.Booster
    import lightgbm

    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ModelopsError(f"{path.name} is not a LightGBM model text file (it is binary)", hint=FORMS) from None
    if not text.startswith("tree") or _END not in text:
        raise ModelopsError(f"{path.name} is not a complete LightGBM model text file (no '{_END}' line)",
                            hint=f"the file is truncated or not LightGBM's; {FORMS}")
    try:
        return lightgbm.Booster(model_str=text)
    except lightgbm.basic.LightGBMError as exc:
        raise ModelopsError(f"{path.name} does not load as a LightGBM model: {str(exc)[:200]}",
                            hint=f"the file is damaged; {FORMS}") from None


def _wrapper(spec: dict, inputs: Sequence, method: str) -> Predictor:
    """A pickled scikit-learn wrapper (LGBMClassifier, LGBMRegressor): its booster, with its classes."""
    if spec.get("serialization_format", "cloudpickle") not in ("cloudpickle", "pickle"):
        raise ModelopsError(f"unsupported serialization {spec['serialization_format']!r}",
                            hint="save the model with serialization_format='cloudpickle', or save its booster")
    with spec["data"].open("rb") as handle:
        model = pickle.load(handle)  # cloudpickle output loads with pickle
    classes = getattr(model, "classes_", None)
    return _predictor(model.booster_, spec["data"].name, inputs, method,
                      None if classes is None else np.asarray(classes).tolist())


def _predictor(booster, name: str, inputs: Sequence, method: str, classes: list | None) -> Predictor:
    check_width(f"the model {name}", booster.num_feature(), inputs)
    objective = str(booster.params.get("objective") or booster.dump_model(num_iteration=0)["objective"]).split()[0]
    what = f"a model with objective {objective}"
    if objective not in _CLASSIFIERS:
        return predictor(booster.predict, None, method, what, booster)
    if classes is None:
        classes = list(range(booster.num_model_per_iteration() if objective != "binary" else 2))
    if objective == "binary":
        return predictor(lambda batch: two_columns(booster.predict(batch)), classes, method, what, booster)
    return predictor(booster.predict, classes, method, what, booster)
