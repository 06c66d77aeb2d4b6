"""Bad artifacts of the native flavors (another framework's booster, a damaged file, a signature of the
wrong width), `modelops new --flavor`, and the MLflow directory `apply` wraps a booster file in."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelops.artifacts import digest
from modelops.manifest.loading import load as load_manifest
from tests.conftest import ROOT, run_cli
from tests.flavors.native import MODELS

WRONG_FILES = [
    ("xgboost", "lightgbm", "is a LightGBM model, not an XGBoost booster"),
    ("xgboost", "catboost", "is a CatBoost model, not an XGBoost booster"),
    ("lightgbm", "xgboost", "is an XGBoost booster, not a LightGBM model"),
    ("catboost", "xgboost", "is an XGBoost booster, not a CatBoost model"),
]


def _point_at(folder: Path, artifact: Path) -> None:
    """Make version 1.0.0 of the model in `folder` the file `artifact` (copied in, digest updated)."""
    manifest = yaml.safe_load((folder / "model.yaml").read_text())
    target = folder / "artifacts" / "1.0.0" / artifact.name
    for old in (folder / "artifacts" / "1.0.0").iterdir():
        old.unlink()
    shutil.copyfile(artifact, target)
    manifest["versions"][0]["artifact"] = {"uri": f"artifacts/1.0.0/{artifact.name}", "sha256": digest(target)}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


@pytest.fixture
def scratch(native_repo: Path, tmp_path: Path) -> Callable[[str], Path]:
    """scratch(flavor): a copy of that flavor's model in a repository of its own, to break."""

    def copy(flavor: str) -> Path:
        root = tmp_path / "native_repo"
        shutil.copytree(native_repo / "models" / MODELS[flavor], root / "models" / MODELS[flavor])
        shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
        assert run_cli("codeowners", cwd=root).code == 0
        return root / "models" / MODELS[flavor]

    return copy


@pytest.mark.parametrize(("flavor", "other", "message"), WRONG_FILES)
def test_a_booster_of_another_framework_is_a_located_error(native_repo: Path, scratch, flavor: str, other: str,
                                                           message: str) -> None:
    folder = scratch(flavor)
    source = native_repo / "models" / MODELS[other]
    _point_at(folder, source / load_manifest(source, native_repo).manifest.versions[0].artifact.uri)
    result = run_cli("validate", f"models/{folder.name}", cwd=folder.parents[1])
    assert result.code == 1
    assert result.err.startswith(f"models/{folder.name}/model.yaml:"), result.err
    first, hint = result.err.splitlines()[:2]
    assert f": versions[0].artifact: version 1.0.0: does not load as {flavor}: " in first and message in first
    assert f"(use flavor: {other}, or give a" in first and hint.startswith("  hint: ")
    assert "Traceback" not in result.err


@pytest.mark.parametrize("flavor", list(MODELS))
def test_a_damaged_artifact_is_a_located_error(native_repo: Path, scratch, tmp_path: Path, flavor: str) -> None:
    folder = scratch(flavor)
    artifact = folder / load_manifest(folder, folder.parents[1]).manifest.versions[0].artifact.uri
    damaged = tmp_path / artifact.name
    damaged.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    _point_at(folder, damaged)
    result = run_cli("validate", f"models/{folder.name}", cwd=folder.parents[1])
    assert result.code == 1
    first, hint = result.err.splitlines()[:2]
    assert first.startswith(f"models/{folder.name}/model.yaml:") and f"does not load as {flavor}: " in first
    assert hint.startswith("  hint: ") and "Traceback" not in result.err


def test_a_signature_that_does_not_fit_the_booster_is_a_located_error(native_repo: Path, scratch) -> None:
    folder = scratch("xgboost")
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("    - {name: proline, type: double}\n", "", 1))
    result = run_cli("validate", f"models/{folder.name}", "--format", "json", cwd=folder.parents[1])
    assert result.code == 1
    problems = json.loads(result.out)["problems"]
    assert any("the booster model.ubj takes 13 features, the signature has 12 input columns" in p["message"]
               for p in problems), problems


def train_two_feature_model(flavor: str, path: Path) -> None:
    """A tiny regressor on two features (the scaffold's signature), saved as `flavor`'s single file."""
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]] * 5)
    y = x[:, 0] * 2 + x[:, 1]
    path.parent.mkdir(parents=True)
    if flavor == "xgboost":
        import xgboost

        xgboost.train({"nthread": 1}, xgboost.DMatrix(x, label=y), 3).save_model(str(path))
    elif flavor == "lightgbm":
        import lightgbm

        params = {"verbose": -1, "num_threads": 1, "min_data_in_leaf": 1}
        lightgbm.train(params, lightgbm.Dataset(x, y), 3).save_model(str(path))
    else:
        import catboost

        model = catboost.CatBoostRegressor(iterations=3, verbose=False, thread_count=1, allow_writing_files=False)
        model.fit(x, y).save_model(str(path))


@pytest.mark.parametrize("flavor", list(MODELS))
def test_new_scaffolds_a_flavor_that_validates_once_its_artifact_is_in(native_repo: Path, tmp_path: Path,
                                                                       flavor: str) -> None:
    root = tmp_path / "native_repo"
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "models").mkdir()
    result = run_cli("new", "scored", "--flavor", flavor, cwd=root)
    assert result.code == 0, result.err
    folder = root / "models" / "scored"
    manifest = folder / "model.yaml"
    uri = yaml.safe_load(manifest.read_text())["versions"][0]["artifact"]["uri"]
    assert f"flavor: {flavor}\n" in manifest.read_text()
    train_two_feature_model(flavor, folder / uri)
    manifest.write_text(manifest.read_text().replace("0" * 64, digest(folder / uri)))
    assert run_cli("codeowners", cwd=root).code == 0
    result = run_cli("validate", "models/scored", cwd=root)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


@pytest.mark.parametrize(("flavor", "name", "section"), [
    ("xgboost", "model.ubj", {"model_class": "xgboost.sklearn.XGBClassifier", "model_format": "ubj",
                              "xgb_version": "3.2.0"}),
    ("lightgbm", "model.txt", {"model_class": "lightgbm.basic.Booster", "lgb_version": "4.7.0"}),
    ("catboost", "model.cbm", {"model_type": "CatBoostClassifier", "save_format": "cbm",
                               "catboost_version": "1.2.10"}),
])
def test_wrapping_a_booster_file_never_loads_it(native_repo: Path, tmp_path: Path, flavor: str, name: str,
                                                section: dict) -> None:
    from modelops.registry.mlflow_model import model_dir

    folder = native_repo / "models" / MODELS[flavor]
    loaded = load_manifest(folder, native_repo)
    untrusted = tmp_path / name
    untrusted.write_bytes(b"not a model: loading it would fail")
    wrapped = model_dir(untrusted, loaded.manifest, loaded.read("requirements"), tmp_path)
    mlmodel = yaml.safe_load((wrapped / "MLmodel").read_text())
    assert mlmodel["flavors"][flavor] == {"data": name, "code": None, **section}
    assert mlmodel["flavors"]["python_function"]["loader_module"] == f"mlflow.{flavor}"
    assert mlmodel["flavors"]["python_function"]["data"] == name
    assert (wrapped / name).read_bytes() == untrusted.read_bytes()
    assert (wrapped / "requirements.txt").read_text() == loaded.read("requirements")
