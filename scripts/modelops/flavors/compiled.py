"""The compiled fast path: a scikit-learn, XGBoost or LightGBM model converted to ONNX (skl2onnx,
onnxmltools), the rows it is checked on, and whether it agrees with the model it was compiled from.

Conversion is deterministic (the graph is named, not given a random id), so a rebuild writes the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.errors import ModelopsError
from modelops.flavors.onnx import CLASSES_KEY

CHECK_ROWS = 1000  # rows sampled within the example's (or the reference's) ranges, besides those rows
GRAPH_NAME = "modelops-compiled"
_NUMERIC = {"double": "f", "float": "f", "integer": "i", "long": "i", "boolean": "b"}


@dataclass(frozen=True)
class Agreement:
    """How close the compiled model came to the original, over `rows` rows."""

    rows: int
    absolute: float  # largest |compiled - original|
    relative: float  # largest |compiled - original| / |original|, over nonzero originals
    labels: bool     # the outputs are labels (compared exactly)

    def describe(self) -> str:
        if self.labels:
            return f"labels identical on {self.rows} rows"
        return (f"agrees on {self.rows} rows, maximum deviation {self.absolute:.3g} absolute, "
                f"{self.relative:.3g} relative")


def native(predictor: Any) -> Any:
    """The framework's own model object behind what a flavor loaded (a flavor's wrapper exposes `.model`)."""
    return predictor.model if type(predictor).__module__.startswith("modelops.") else predictor


def is_classifier(model: Any) -> bool:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return hasattr(final, "classes_") or type(final).__name__.endswith("Classifier")


COMPILABLE = ("sklearn", "xgboost", "lightgbm")  # the flavors (their frameworks' module names) that compile


def convert(model: Any, columns: int, precision: str, classes: Sequence | None = None) -> bytes:
    """The ONNX graph of `model` (one [N, columns] input of `precision` float or double), serialized, with the
    class labels as metadata: `classes`, or the model's `classes_` (so that ONNX Runtime alone can say them)."""
    framework = type(model).__module__.split(".")[0]
    converters = dict(zip(COMPILABLE, (_sklearn, _xgboost, _lightgbm), strict=True))
    if framework not in converters:
        raise ModelopsError(f"cannot compile a {type(model).__module__}.{type(model).__name__} to ONNX",
                            field="compile", hint="compile serves scikit-learn, XGBoost and LightGBM tree ensembles "
                                                  "and linear models; remove compile to serve it as it is")
    try:
        graph = converters[framework](model, columns, precision)
    except ModelopsError:
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelopsError(f"{type(model).__name__} does not convert to ONNX: {type(exc).__name__}: {reason}",
                            field="compile",
                            hint="compile a tree ensemble or a linear model, or remove compile") from None
    graph.graph.name = GRAPH_NAME
    if classes is None:
        classes = getattr(model.steps[-1][1] if hasattr(model, "steps") else model, "classes_", None)
    if classes is not None:
        entry = graph.metadata_props.add()
        entry.key, entry.value = CLASSES_KEY, json.dumps(np.asarray(classes).tolist())
    return graph.SerializeToString(deterministic=True)


def _tensor(precision: str, columns: int, module: Any) -> list:
    kind = module.DoubleTensorType if precision == "double" else module.FloatTensorType
    return [("input", kind([None, columns]))]


def _sklearn(model: Any, columns: int, precision: str) -> Any:
    import skl2onnx
    from skl2onnx.common import data_types

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if is_classifier(model) else None
    return skl2onnx.convert_sklearn(model, initial_types=_tensor(precision, columns, data_types), options=options)


def _float_only(framework: str, precision: str) -> None:
    if precision != "float":
        raise ModelopsError(f"{framework} models convert to float32 graphs only", field="compile.precision",
                            hint="set compile.precision: float, and a tolerance the float32 graph meets")


def _xgboost(model: Any, columns: int, precision: str) -> Any:
    import onnxmltools
    from onnxmltools.convert.common import data_types

    _float_only("XGBoost", precision)
    return onnxmltools.convert_xgboost(model, initial_types=_tensor(precision, columns, data_types))


def _lightgbm(model: Any, columns: int, precision: str) -> Any:
    import onnxmltools
    from onnxmltools.convert.common import data_types

    _float_only("LightGBM", precision)
    return onnxmltools.convert_lightgbm(model, initial_types=_tensor(precision, columns, data_types), zipmap=False)


def check_rows(base: np.ndarray, kinds: Sequence[str], count: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """`base` (the example's or the reference's rows) and `count` rows drawn within its ranges, per column."""
    refused = [kind for kind in kinds if kind not in _NUMERIC]
    if refused:
        raise ModelopsError(f"compile needs numeric inputs, not {', '.join(sorted(set(refused)))}",
                            field="compile", hint="remove compile: tree ensembles and linear models take numbers")
    base = np.asarray(base, dtype=np.float64)
    rng = np.random.default_rng(seed)
    columns = []
    for j, kind in enumerate(kinds):
        low, high = base[:, j].min(), base[:, j].max()
        if _NUMERIC[kind] == "f":
            columns.append(rng.uniform(low, high, count))
        elif _NUMERIC[kind] == "i":
            columns.append(rng.integers(int(low), int(high) + 1, count).astype(np.float64))
        else:
            columns.append(rng.choice(np.unique(base[:, j]), count))
    return np.vstack([base, np.column_stack(columns)])


def agreement(original: np.ndarray, compiled: np.ndarray, absolute: float, relative: float, labels: bool
              ) -> Agreement:
    """How `compiled` compares with `original`; raises ModelopsError when a label differs or a number is
    outside the tolerance: |compiled - original| <= absolute + relative * |original|."""
    original, compiled = np.asarray(original), np.asarray(compiled)
    if original.shape != compiled.shape and original.size == compiled.size:
        compiled = compiled.reshape(original.shape)
    if original.shape != compiled.shape:
        raise ModelopsError(f"the compiled model answers in shape {list(compiled.shape)}, the model in "
                            f"{list(original.shape)}", field="compile", hint="remove compile for this model")
    rows = len(original)
    if labels:
        differ = [i for i, (a, b) in enumerate(zip(original.tolist(), compiled.tolist(), strict=True)) if a != b]
        if differ:
            i = differ[0]
            raise ModelopsError(f"the compiled model gives other labels on {len(differ)} of {rows} rows "
                                f"(row {i}: {compiled.tolist()[i]!r} instead of {original.tolist()[i]!r})",
                                field="compile", hint="labels must be identical: remove compile for this model, "
                                                      "or compile with precision: double")
        return Agreement(rows, 0.0, 0.0, labels=True)
    a, b = original.astype(np.float64).reshape(rows, -1), compiled.astype(np.float64).reshape(rows, -1)
    gap = np.abs(b - a)
    nonzero = np.abs(a) > 0
    worst = float((gap[nonzero] / np.abs(a[nonzero])).max()) if nonzero.any() else 0.0
    found = Agreement(rows, float(gap.max()) if gap.size else 0.0, worst, labels=False)
    outside = gap > absolute + relative * np.abs(a)
    if outside.any():
        i = int(np.argwhere(outside)[0][0])
        raise ModelopsError(
            f"the compiled model disagrees beyond its tolerance (absolute {absolute:g}, relative "
            f"{relative:g}) on {int(outside.any(axis=1).sum())} of {rows} rows: maximum deviation "
            f"{found.absolute:.3g} absolute, {found.relative:.3g} relative (row {i}: {b[i].tolist()} instead "
            f"of {a[i].tolist()})", field="compile.tolerance",
            hint=f"if that deviation is acceptable, declare it (e.g. tolerance: {{absolute: "
                 f"{found.absolute * 1.1:.2g}}}); else remove compile, or compile with precision: double")
    return found
