"""Fixtures for batch scoring: rows of the example models as files, and one real `modelops serve` per module."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
from tests.runner.conftest import ROOT, Servers, iris_model  # noqa: F401  (a fixture)

DIABETES = ROOT / "models" / "diabetes"
IRIS = ROOT / "models" / "iris"
DIABETES_COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
IRIS_ROWS = json.loads((IRIS / "example.json").read_text())["inputs"]


def diabetes_rows(count: int, seed: int = 3) -> list[list[float]]:
    """`count` rows of the diabetes columns, drawn within the data set's (scaled) ranges."""
    generator = np.random.default_rng(seed)
    return np.round(generator.uniform(-0.1, 0.2, size=(count, len(DIABETES_COLUMNS))), 6).tolist()


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def diabetes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`modelops serve models/diabetes --env production`, for a whole test module."""
    servers = Servers(tmp_path_factory.mktemp("diabetes-serve"))
    yield servers.start(str(DIABETES), "--env", "production")
    servers.stop_all()
