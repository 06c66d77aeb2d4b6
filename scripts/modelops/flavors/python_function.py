"""What an MLmodel's python_function flavor answers, read as data (the model is never loaded): the registry's
plan, `modelops import`, `serve models:/…`, validate's load check and the pyfunc flavor all read it here.
"""

from __future__ import annotations

from modelops.flavors import mlflow_entry
from modelops.signature.probabilities import PREDICT, PREDICT_PROBA


def answered_method(spec: object) -> str:
    """What an MLmodel's python_function answers: the method of its model config when it is modelops' entry
    (another model's config is its own), else its `predict_fn` (predict_proba, or a method no manifest serves,
    such as decision_function), else predict; "" for an MLmodel that is not a mapping."""
    from mlflow.pyfunc import MODEL_CONFIG  # the key MLflow saves a model_config under

    if not isinstance(spec, dict):
        return ""
    flavors = spec.get("flavors")
    function = flavors.get("python_function") if isinstance(flavors, dict) else None
    function = function if isinstance(function, dict) else {}
    config = function.get(MODEL_CONFIG) if mlflow_entry.is_loader(function.get("loader_module")) else None
    method = config.get("method") if isinstance(config, dict) else None
    if method in (PREDICT, PREDICT_PROBA):
        return method
    named = function.get("predict_fn")
    return named if isinstance(named, str) and named else PREDICT
