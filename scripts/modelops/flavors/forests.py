"""scikit-learn's random forests and extra trees, scored without the per-tree dispatch.

A forest's own `predict` hands each of its trees to joblib with a configuration context, warning filters
and input checks: for a few rows that costs ten times the trees' traversal. `Forest` does what the
forest does (each tree's value for float32 rows, summed in the forest's order, divided by the number of
trees; a classifier's class with the largest mean probability), and its answers are checked at load
against the forest's own on rows spread over the trees' split thresholds: bit for bit, or the forest is
served as it is (`fast`). Rows that are not finite are left to the forest, which refuses or handles them
as it does.

A regressor's trees are summed in one call of scikit-learn's own traversal of gradient boosting's stages
(`predict_stages`: every tree, row by row, in compiled code, adding each tree's leaf value scaled by 1.0):
no Python between two trees, so a call of a few rows costs a tenth of one tree by tree, and the call takes
the GIL once instead of once a tree (a predict thread that needs the GIL back after every tree waits for
the event loop each time, up to the interpreter's switch interval). A classifier's trees are read one by
one (`tree_.predict`: the class fractions of each leaf).
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHECK_ROWS = 64


def fast(model: Any, method: str) -> Any:
    """A `Forest` for a single-output forest whose answers to `method` it reproduces exactly; else `model`."""
    from sklearn import ensemble

    kinds = (ensemble.RandomForestRegressor, ensemble.ExtraTreesRegressor, ensemble.RandomForestClassifier,
             ensemble.ExtraTreesClassifier)
    if type(model) not in kinds or getattr(model, "n_outputs_", 0) != 1 or not getattr(model, "estimators_", None):
        return model
    try:
        forest = Forest(model)
    except ImportError:  # a scikit-learn release without predict_stages
        return model
    rows = _spread(model)
    answer = getattr(forest, method)
    expected = getattr(model, method)
    return forest if np.array_equal(answer(rows), expected(rows)) else model


class Forest:
    """`predict` (and a classifier's `predict_proba`) of a fitted single-output forest; `.model` is the forest."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._trees = [tree.tree_ for tree in model.estimators_]
        self._features = model.n_features_in_
        self._classes = getattr(model, "classes_", None)
        if self._classes is not None:
            self.predict_proba = self._predict_proba
        else:
            from sklearn.ensemble._gradient_boosting import predict_stages

            self._predict_stages = predict_stages
            self._stages = np.empty((len(model.estimators_), 1), dtype=object)  # its [stage, output] of trees
            self._stages[:, 0] = model.estimators_

    def predict(self, batch: Any) -> np.ndarray:
        rows = self._rows(batch)
        if rows is None:
            return self.model.predict(batch)
        if self._classes is None:
            total = np.zeros((len(rows), 1), dtype=np.float64)
            self._predict_stages(self._stages, rows, 1.0, total)
            total /= len(self._trees)
            return total[:, 0]
        return self._classes.take(np.argmax(self._proba(rows), axis=1), axis=0)

    def _predict_proba(self, batch: Any) -> np.ndarray:
        rows = self._rows(batch)
        return self.model.predict_proba(batch) if rows is None else self._proba(rows)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        classes = len(self._classes)
        total = np.zeros((len(rows), classes), dtype=np.float64)
        for tree in self._trees:
            total += tree.predict(rows)[:, :classes]
        total /= len(self._trees)
        return total

    def _rows(self, batch: Any) -> np.ndarray | None:
        """The rows as the trees read them (C-ordered float32), or None to leave them to the forest."""
        if not isinstance(batch, np.ndarray) or batch.ndim != 2 or batch.shape[1] != self._features:
            return None
        rows = np.ascontiguousarray(batch, dtype=np.float32)
        return rows if np.isfinite(rows).all() else None


def _spread(model: Any) -> np.ndarray:
    """Rows whose values range over each feature's split thresholds, and a little beyond."""
    low = np.full(model.n_features_in_, -1.0)
    high = np.full(model.n_features_in_, 1.0)
    for tree in model.estimators_:
        split = tree.tree_.feature >= 0
        features, thresholds = tree.tree_.feature[split], tree.tree_.threshold[split]
        np.minimum.at(low, features, thresholds)
        np.maximum.at(high, features, thresholds)
    margin = (high - low) * 0.1 + 1e-3
    return np.random.default_rng(0).uniform(low - margin, high + margin, size=(CHECK_ROWS, len(low)))
