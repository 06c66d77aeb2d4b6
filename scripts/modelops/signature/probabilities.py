"""Class probabilities (`method: predict_proba`): one double output column per class, each naming its label.

The check of a model's classes against the declared labels (the load check, the runner at start-up),
the shape the protocols answer them in, and the shadow comparison: probabilities within a tolerance,
the predicted labels (the most probable class of each row) exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PREDICT = "predict"  # the default method: the model's predictions
PREDICT_PROBA = "predict_proba"
TENSOR = "probabilities"  # the v2 output tensor: [N, classes] FP64
DEFAULT_TOLERANCE = 1e-6  # absolute, per probability (runner setting shadow_tolerance)


def _key(label: Any) -> tuple[bool, Any]:
    """Labels compare as the model's classes do, except that a string never equals a number."""
    return isinstance(label, str), label


def class_problem(classes: Sequence | None, labels: Sequence) -> tuple[str, str] | None:
    """(message, hint) when the model's `classes` (None: it cannot say) are not the declared `labels`,
    in order; None when they are."""
    if classes is None:
        return None
    listed = ", ".join(f"label: {c!r}" if isinstance(c, str) else f"label: {c}" for c in classes)
    hint = f"declare one double output per class, in the model's order: {listed}"
    if len(classes) != len(labels):
        return (f"the model has {len(classes)} classes; the signature declares {len(labels)} output column(s)",
                hint)
    if [_key(c) for c in classes] != [_key(label) for label in labels]:
        return f"the labels {list(labels)!r} are not the model's classes {list(classes)!r}, in order", hint
    return None


def tensor(outputs: np.ndarray) -> dict:
    """The v2 output tensor of probabilities: one [N, classes] FP64 tensor, row-major."""
    table = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    return {"name": TENSOR, "datatype": "FP64", "shape": list(table.shape), "data": table.reshape(-1)}


def tensor_metadata(labels: Sequence) -> dict:
    """The v2 metadata of that tensor; `parameters.labels` names the class of each column."""
    return {"name": TENSOR, "datatype": "FP64", "shape": [-1, len(labels)], "parameters": {"labels": list(labels)}}


def agreeing_probabilities(served: np.ndarray, shadow: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> int:
    """Rows whose probabilities all differ by at most `tolerance` and whose most probable class is the same."""
    served, shadow = np.asarray(served, dtype=np.float64), np.asarray(shadow, dtype=np.float64)
    if served.shape != shadow.shape or served.ndim != 2:
        return 0
    close = (np.abs(served - shadow) <= tolerance).all(axis=1)
    return int((close & (served.argmax(axis=1) == shadow.argmax(axis=1))).sum())
