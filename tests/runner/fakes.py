"""Tiny sklearn-like models the tests pickle into artifacts (the runner's server imports this module)."""

from __future__ import annotations

import time
import warnings

import numpy as np


class Constant:
    """Predicts `value` for every row."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.full(len(batch), self.value, dtype=np.int64)


class Raises:
    """A version that always fails."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("this shadow is broken")


class Sleeps:
    """A version that takes two seconds per call."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(2)
        return np.zeros(len(batch), dtype=np.int64)


class Counting:
    """Sums each row; counts its calls and the rows of each call (for batching tests, in-process)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        if np.any(batch < 0):
            raise ValueError("negative values are not allowed")
        time.sleep(self.delay)
        return batch.sum(axis=1)


class EchoesInput:
    """Fails with a long, multi-line message that quotes the batch (as MLflow's schema errors do)."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError(f"Failed to enforce schema of data '{batch!r}'\n" + "details " * 100)


class Warns:
    """Predicts 7 for every row, with a Python warning (as libraries warn about casts or versions)."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        warnings.warn("7 is all this model knows", RuntimeWarning, stacklevel=1)
        return np.full(len(batch), 7, dtype=np.int64)


class Spells:
    """Predicts `offset` plus the length of the text in column 1; fails (RuntimeError) on a batch where column 0
    holds 13, so that a test can make a version answer 500 at will."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if np.any(batch[:, 0] == 13):
            raise RuntimeError("unlucky number")
        return np.array([self.offset + len(text) for text in batch[:, 1]], dtype=np.int64)


class ReturnsObjects:
    """Predicts objects no protocol can serialise: the answer fails after the route, in the app's error handler."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.array([object() for _ in batch], dtype=object)
class Slow:
    """Predicts 1 for every row, after `per_call` seconds plus `per_row` seconds for each row."""

    def __init__(self, per_call: float = 0.0, per_row: float = 0.0) -> None:
        self.per_call = per_call
        self.per_row = per_row

    def predict(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.per_call + self.per_row * len(batch))
        return np.ones(len(batch), dtype=np.int64)
