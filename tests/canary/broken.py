"""A model that loads and then fails on every prediction (a RuntimeError: the runner answers 500), for the
canary that must be rolled back."""

from __future__ import annotations


class Broken:
    """Loads like an estimator; predicting raises."""

    def predict(self, rows: object) -> object:
        raise RuntimeError("this version is broken on purpose")
