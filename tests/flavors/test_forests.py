"""`flavors.forests`: random forests and extra trees scored tree by tree give the forest's own answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import ensemble
from sklearn.datasets import load_diabetes, load_iris

from modelops.flavors import forests

DIABETES = load_diabetes(return_X_y=True)
IRIS = load_iris(return_X_y=True)
FORESTS = [
    (ensemble.RandomForestRegressor, DIABETES, "predict"),
    (ensemble.ExtraTreesRegressor, DIABETES, "predict"),
    (ensemble.RandomForestClassifier, IRIS, "predict"),
    (ensemble.RandomForestClassifier, IRIS, "predict_proba"),
    (ensemble.ExtraTreesClassifier, IRIS, "predict_proba"),
]


def _rows(features: int, count: int = 300) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(count, features)) * 3


@pytest.mark.parametrize(("kind", "data", "method"), FORESTS, ids=[f"{k.__name__}-{m}" for k, _, m in FORESTS])
def test_a_forest_answers_exactly_as_scikit_learn(kind: type, data: tuple, method: str) -> None:
    x, y = data
    model = kind(n_estimators=25, max_depth=6, random_state=0).fit(x, y)
    fast = forests.fast(model, method)
    assert isinstance(fast, forests.Forest) and fast.model is model
    for rows in (x[:1], x[:100], _rows(x.shape[1])):
        assert np.array_equal(getattr(fast, method)(rows), getattr(model, method)(rows))


def test_rows_the_trees_cannot_read_are_left_to_the_forest() -> None:
    x, y = DIABETES
    model = ensemble.RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    fast = forests.fast(model, "predict")
    with pytest.raises(ValueError, match="features"):  # scikit-learn's own refusal of a wrong width
        fast.predict(x[:2, :3])
    gap = x[:3].copy()
    gap[1, 2] = np.nan  # this forest learned no missing values: scikit-learn's answer (or refusal) stands
    try:
        expected = model.predict(gap)
    except ValueError as refusal:
        with pytest.raises(ValueError, match=str(refusal)[:30]):
            fast.predict(gap)
    else:
        assert np.array_equal(fast.predict(gap), expected)


@pytest.mark.parametrize("model", [
    ensemble.GradientBoostingRegressor(n_estimators=5).fit(*DIABETES),
    ensemble.RandomForestRegressor(n_estimators=5).fit(DIABETES[0], np.c_[DIABETES[1], DIABETES[1]]),  # 2 outputs
    ensemble.RandomForestRegressor(n_estimators=5),  # not fitted
], ids=["boosting", "two-outputs", "unfitted"])
def test_other_models_are_served_as_they_are(model: object) -> None:
    assert forests.fast(model, "predict") is model


def test_the_check_rows_reach_past_every_split() -> None:
    x, y = DIABETES
    model = ensemble.RandomForestRegressor(n_estimators=10, random_state=0).fit(x, y)
    rows = forests._spread(model)
    for tree in model.estimators_:
        split = tree.tree_.feature >= 0
        for feature, threshold in zip(tree.tree_.feature[split], tree.tree_.threshold[split], strict=True):
            assert rows[:, feature].min() < threshold < rows[:, feature].max()
