"""scikit-learn: an MLflow model directory (its `MLmodel` names the pickled model), a single `.skops` file
(types outside scikit-learn, NumPy and SciPy are refused), or a `.pkl`/`.joblib` file."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import yaml

from modelops.errors import ModelopsError
from modelops.flavors import Predictor, Probabilities, forests

TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """The estimator in `path` (the input columns are not needed: it predicts on arrays); for
    `predict_proba`, its `predict_proba` with `classes_` as the classes. A random forest or extra trees
    answers through `forests.Forest` (the same answers, without the per-tree dispatch)."""
    model = _estimator(path)
    if method == "predict":
        return forests.fast(model, method)
    if not callable(getattr(model, "predict_proba", None)):  # hasattr runs the property that may refuse
        raise ModelopsError(f"{type(model).__name__} has no predict_proba", field="method",
                            hint="use method: predict, or a classifier that gives probabilities "
                                 "(some need an option, e.g. SVC(probability=True))")
    return Probabilities(forests.fast(model, method).predict_proba, getattr(model, "classes_", None), model)


def _estimator(path: Path) -> Predictor:
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

        return skops.io.load(path, trusted=skops_types(path))
    if path.suffix in (".pkl", ".pickle", ".joblib"):
        import joblib

        return joblib.load(path)
    raise ModelopsError(f"cannot tell how to load {path.name}",
                        hint="an MLflow model directory, a .skops, .pkl or .joblib file")


def skops_types(path: Path) -> list[str]:
    """The non-default types a .skops file needs; refused unless all are within scikit-learn, NumPy and SciPy."""
    import skops.io

    types = skops.io.get_untrusted_types(file=path)
    refused = [t for t in types if not t.startswith(TRUSTED_SKOPS_PREFIXES)]
    if refused:
        raise ModelopsError(f"the skops file holds types outside scikit-learn: {', '.join(refused)}")
    return list(types)
