"""The classes of a model that answers probabilities, read by loading it in the sandboxed child, and the
output columns they make: one double column per class, each naming its label.

`serve models:/…` and `modelops import` use it for an MLflow model whose MLmodel does not name its
classes (its python_function answers `predict_proba`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.manifest.model import COLUMN_NAME_RE, LABEL_MAX, Column, OutputColumn

_COLUMN_NAME = re.compile(COLUMN_NAME_RE)


def classes(flavor: str, path: Path, inputs: Sequence[Column], method: str, label: str) -> list | None:
    """The classes of the model in `path` answering `method` (None: it cannot say), read by loading it in
    the sandboxed child (`_main`); `label` names the model in errors."""
    from modelops.manifest.load_check import sandboxed

    request = {"flavor": flavor, "path": str(path), "inputs": [c.model_dump() for c in inputs], "method": method}
    found = sandboxed(__name__, request, ["classes"])["classes"]
    if isinstance(found, str):
        raise ModelopsError(f"{label} does not load: {found}", hint="check that this environment has the "
                            "model's requirements")
    return found


def probability_columns(found: Sequence | None, outputs: Sequence[Column] | None, label: str
                        ) -> list[OutputColumn]:
    """One double column per class of `found`: named as `outputs` when they are one per class, else
    p_<label> (p_<index> when a label makes no column name)."""
    if found is None:
        raise ModelopsError(f"{label} answers probabilities but cannot say its classes", field="method",
                            hint="serve it from a model folder, whose manifest names each output's label")
    found = _labels(found, label)
    names = [c.name for c in outputs or []]
    if len(names) != len(found):
        names = [f"p_{c}" for c in found]
        if not all(_COLUMN_NAME.match(n) for n in names) or len(set(names)) != len(names):
            names = [f"p_{i}" for i in range(len(found))]
    return [OutputColumn(name=n, type="double", label=c) for n, c in zip(names, found, strict=True)]


def _labels(found: object, label: str) -> list[str | int]:
    """The classes as manifest labels: strings and integers (an integral float, as a model fitted on float
    targets keeps them, is its integer: it names the same class); a ModelopsError for any other."""
    if not isinstance(found, list) or not found:
        raise ModelopsError(f"{label}: its classes are not a list of labels ({str(found)[:100]})", field="method",
                            hint="serve it from a model folder, whose manifest names each output's label")
    labels: list[str | int] = []
    for c in found:
        if isinstance(c, float) and c.is_integer():
            c = int(c)
        if not ((isinstance(c, str) and 0 < len(c) <= LABEL_MAX) or (isinstance(c, int) and not isinstance(c, bool))):
            raise ModelopsError(f"{label}: its class {c!r} is not a label a manifest can name (a string of 1-"
                                f"{LABEL_MAX} characters, or an integer)", field="method",
                                hint="fit the model on string or integer classes, or serve it from a model folder "
                                     "whose manifest names each output's label")
        labels.append(c)
    if len(set(map(repr, labels))) != len(labels):
        raise ModelopsError(f"{label}: its classes {labels!r} repeat a label", field="method",
                            hint="fit the model on distinct string or integer classes")
    return labels


def _main() -> None:
    """The child of `classes`: a request on stdin, {"classes": [...] | None | "why it does not load"} out."""
    import sys
    import traceback

    from modelops import flavors

    request = json.loads(sys.stdin.read())
    try:
        inputs = [Column.model_validate(c) for c in request["inputs"]]
        predictor = flavors.load(request["flavor"], Path(request["path"]), inputs, request["method"])
        answer = getattr(predictor, "classes", None)
    except ModelopsError as exc:
        answer = str(exc) + (f" (hint: {exc.problem.hint})" if exc.problem.hint else "")
    except Exception:
        answer = "the loader failed: " + traceback.format_exc().splitlines()[-1][:300]
    sys.stdout.write("\n" + json.dumps({"classes": answer}, default=_plain) + "\n")


def _plain(value: object) -> object:
    """A NumPy scalar as JSON has it (a class label of a model that keeps them as such)."""
    return value.item() if hasattr(value, "item") else str(value)


if __name__ == "__main__":
    _main()
