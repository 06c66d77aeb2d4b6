"""A `pyfunc` image carries mlflow-skinny and pandas (what mlflow.pyfunc needs), not the whole of MLflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli
from tests.registry.helpers import copy_model

MB = 1_000_000
# distributions of the whole of MLflow that mlflow-skinny leaves out (its server, UI store and plots)
FULL_MLFLOW = ("mlflow", "flask", "sqlalchemy", "alembic", "matplotlib", "pyarrow", "gunicorn")


def test_a_pyfunc_image_serves_through_mlflow_skinny(tmp_path: Path, base_image: str, docker_client) -> None:
    repo = tmp_path / "repo"
    folder = copy_model(repo, "iris", "iris-pyfunc")  # its own image name
    shutil.copytree(ROOT / "templates", repo / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", repo / "pyproject.toml")
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("flavor: sklearn", "flavor: pyfunc"))
    requirements = folder / "requirements.txt"
    requirements.write_text(requirements.read_text() + "mlflow==3.17.2\n")
    refused = run_cli("build", "models/iris-pyfunc", "--version", "1.0.0", cwd=repo,
                      env={"MODELOPS_BASE_IMAGE": base_image})
    assert refused.code == 1 and "hint: pin mlflow-skinny==3.17.2 instead" in refused.err, refused.err

    requirements.write_text(requirements.read_text().replace("mlflow==", "mlflow-skinny==") + "pandas==3.1.1\n")
    built = run_cli("build", "models/iris-pyfunc", "--version", "1.0.0", "--format", "json", cwd=repo,
                    env={"MODELOPS_BASE_IMAGE": base_image}, timeout=1800)
    assert built.code == 0, built.err
    (image,) = json.loads(built.out)["images"]
    smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=repo, timeout=600)
    assert smoked.code == 0, smoked.err
    assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"

    probe = ("import importlib.metadata as m\ndef has(name):\n    try:\n        return bool(m.version(name))\n"
             "    except m.PackageNotFoundError:\n        return False\n"
             f"print(has('mlflow-skinny'), has('pandas'), *[has(n) for n in {FULL_MLFLOW!r}])")
    found = docker_client.containers.run(image["ref"], ["python", "-c", probe], network_mode="none", remove=True)
    assert found.decode().split() == ["True", "True", *["False"] * len(FULL_MLFLOW)]
    assert image["size"] <= 500 * MB, f"the pyfunc image is {image['size'] / MB:.0f} MB"
