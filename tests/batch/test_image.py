"""`python -m modelops score` in a built runner image (the entry point images run), the input mounted."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops import api
from tests.batch.conftest import DIABETES_COLUMNS, diabetes_rows, read_csv, write_csv
from tests.conftest import run_cli
from tests.images import harness
from tests.runner.conftest import ROOT


@pytest.fixture(scope="module")
def diabetes_image(tmp_path_factory: pytest.TempPathFactory, base_image: str, docker_client) -> Iterator[str]:
    """The runner image of models/diabetes 1.0.0, built once for the module (Docker's cache keeps it quick)."""
    repo = tmp_path_factory.mktemp("image-repo")
    shutil.copytree(ROOT / "models" / "diabetes", repo / "models" / "diabetes")
    shutil.copytree(ROOT / "templates", repo / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", repo / "pyproject.toml")
    env = {"MODELOPS_BASE_IMAGE": base_image, "MODELOPS_IMAGE_REGISTRY": "modelops-tests/batch"}
    built = run_cli("build", "models/diabetes", "--version", "1.0.0", "--format", "json", cwd=repo, env=env,
                    timeout=900)
    assert built.code == 0, built.err
    (image,) = json.loads(built.out)["images"]
    yield image["ref"]
    harness.remove_image(docker_client, image["ref"])


def _run(docker_client, image: str, data: Path, *args: str) -> tuple[int, str]:
    """Run `python -m modelops score /model ARGS` in the image, `data` mounted at /data; (exit code, stderr)."""
    container = docker_client.containers.run(image, ["python", "-m", "modelops", "score", "/model", *args],
                                             volumes={str(data): {"bind": "/data", "mode": "rw"}},
                                             network_mode="none", detach=True)
    try:
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)


def test_the_runner_image_scores_a_mounted_file_as_the_host_does(tmp_path: Path, diabetes_image: str,
                                                                  docker_client) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)  # the image runs as its own non-root user
    rows = diabetes_rows(2000)
    rows[10][0] = "not a number"
    write_csv(data / "rows.csv", DIABETES_COLUMNS, rows)
    code, err = _run(docker_client, diabetes_image, data, "--env", "production", "--input", "/data/rows.csv",
                     "--output", "/data/scored.csv", "--rejects", "/data/rejects.jsonl")
    assert code == 0, err
    host = api.score(str(ROOT / "models" / "diabetes"), str(data / "rows.csv"), str(tmp_path / "host.csv"),
                     rejects=str(tmp_path / "host-rejects.jsonl"))
    assert host.rows == 1999
    assert read_csv(data / "scored.csv") == read_csv(tmp_path / "host.csv")
    (reject,) = [json.loads(line) for line in (data / "rejects.jsonl").read_text().splitlines()]
    assert (reject["row"], reject["problems"][0]["field"]) == (11, "age")

    code, err = _run(docker_client, diabetes_image, data, "--input", "/data/rows.csv", "--output",
                     "/data/scored.parquet", "--rejects", "/data/other.jsonl")
    assert code == 1 and "the pyarrow package is missing" in err and "Traceback" not in err, err
    assert not (data / "scored.parquet").exists() and not (data / "other.jsonl").exists()
