"""A CatBoost model trained with a categorical feature: validate, the flavor against CatBoost's own predict,
apply (plain MLflow scores it), the three protocols, and a signature that types the category as a number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops import flavors
from modelops.artifacts import digest
from modelops.errors import ModelopsError
from modelops.manifest.loading import load as load_manifest
from tests.conftest import ROOT, run_cli
from tests.flavors.native import pins
from tests.registry.helpers import score
from tests.runner.conftest import asgi

NAMES = ["tenure", "plan", "monthly"]
ROWS = [{"tenure": 3.0, "plan": "basic", "monthly": 20.5}, {"tenure": 40.0, "plan": "premium", "monthly": 80.0},
        {"tenure": 12.0, "plan": "family", "monthly": 55.0}, {"tenure": 1.0, "plan": "premium", "monthly": 95.0}]


def _model(folder: Path) -> None:
    """churn-catboost: a CatBoostClassifier whose `plan` (a string) is a categorical feature, labels yes / no."""
    import catboost

    rng = np.random.default_rng(0)
    n = 400
    plan = rng.choice(["basic", "family", "premium"], n)
    tenure, monthly = rng.uniform(0, 60, n), rng.uniform(10, 100, n)
    churn = ((plan == "premium") & (tenure < 12)) | (monthly > 90)
    frame = pd.DataFrame({"tenure": tenure, "plan": plan, "monthly": monthly})
    model = catboost.CatBoostClassifier(iterations=30, depth=3, thread_count=1, random_seed=0, verbose=False,
                                         allow_writing_files=False, cat_features=["plan"])
    model.fit(frame, np.where(churn, "yes", "no"))
    path = folder / "artifacts" / "1.0.0" / "model.cbm"
    path.parent.mkdir(parents=True)
    model.save_model(str(path))
    labels = model.predict(pd.DataFrame(ROWS)).ravel().tolist()
    manifest = {"name": folder.name, "description": "Churn, by a CatBoost classifier with a categorical plan",
                "owners": ["@ml-team"], "flavor": "catboost",
                "signature": {"inputs": [{"name": "tenure", "type": "double"}, {"name": "plan", "type": "string"},
                                         {"name": "monthly", "type": "double"}],
                              "outputs": [{"name": "churn", "type": "string"}]},
                "example": "example.json", "requirements": "requirements.txt",
                "versions": [{"version": "1.0.0", "artifact": {"uri": "artifacts/1.0.0/model.cbm",
                                                                "sha256": digest(path)}}],
                "deployments": {"production": {"version": "1.0.0"}}}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "example.json").write_text(json.dumps({"inputs": ROWS, "outputs": [{"churn": c} for c in labels]}))
    (folder / "requirements.txt").write_text(pins("catboost", "numpy", "scipy", "pandas", "six"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catboost-categories") / "repo"
    _model(root / "models" / "churn-catboost")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    assert run_cli("codeowners", cwd=root).code == 0
    return root


def _catboost_own(repo: Path, method: str) -> np.ndarray:
    import catboost

    model = catboost.CatBoostClassifier()
    model.load_model(str(repo / "models/churn-catboost/artifacts/1.0.0/model.cbm"))
    frame = pd.DataFrame(ROWS)
    return model.predict(frame).ravel() if method == "predict" else model.predict_proba(frame)


def test_validate_scores_the_example_in_the_sandbox(repo: Path) -> None:
    result = run_cli("validate", "models/churn-catboost", cwd=repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_the_flavor_predicts_what_catboost_predicts(repo: Path, method: str) -> None:
    folder = repo / "models" / "churn-catboost"
    manifest = load_manifest(folder, repo).manifest
    batch = np.array([[row[n] for n in NAMES] for row in ROWS], dtype=object)
    predicted = flavors.load("catboost", folder / "artifacts/1.0.0/model.cbm", manifest.signature.inputs,
                             method).predict(batch)
    if method == "predict":
        assert predicted.tolist() == _catboost_own(repo, method).tolist()
        assert set(predicted.tolist()) == {"yes", "no"}
    else:
        np.testing.assert_allclose(predicted, _catboost_own(repo, method), rtol=1e-12, atol=0)
    assert batch[0, 1] == "basic"  # the batch itself is left as it was


def test_the_three_protocols_answer_catboosts_labels(repo: Path) -> None:
    want = _catboost_own(repo, "predict").tolist()
    with asgi(repo / "models" / "churn-catboost", "production") as client:
        answer = client.post("/predict", json={"inputs": ROWS})
        assert answer.status_code == 200, answer.text
        assert [r["churn"] for r in answer.json()["outputs"]] == want
        invocations = client.post("/invocations", json={"dataframe_split": {
            "columns": NAMES, "data": [[r[n] for n in NAMES] for r in ROWS]}}).json()
        assert invocations == {"predictions": want}
        tensors = [{"name": n, "shape": [len(ROWS)], "datatype": "BYTES" if n == "plan" else "FP64",
                    "data": [r[n] for r in ROWS]} for n in NAMES]
        (output,) = client.post("/v2/models/churn-catboost/infer", json={"inputs": tensors}).json()["outputs"]
        assert (output["datatype"], output["data"]) == ("BYTES", want)
        refused = client.post("/predict", json={"inputs": [{**ROWS[0], "plan": 3}]})
        assert refused.status_code in (400, 422) and "plan" in refused.text


def test_apply_registers_a_version_plain_mlflow_scores(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli("apply", cwd=repo, env={"MODELOPS_CACHE": str(repo.parent / "cache"), "MLFLOW_TRACKING_URI": "",
                                             "MODELOPS_TRACKING_URI": ""})
    assert result.code == 0, result.err
    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    predicted = np.asarray(score(uri, "churn-catboost", repo / "models" / "churn-catboost", monkeypatch)).ravel()
    assert predicted.tolist() == _catboost_own(repo, "predict").tolist()


def test_a_category_typed_as_a_number_is_a_located_error(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(repo, root, ignore=shutil.ignore_patterns(".modelops"))
    manifest = root / "models/churn-catboost/model.yaml"
    manifest.write_text(manifest.read_text().replace("name: plan\n    type: string", "name: plan\n    type: double"))
    assert "type: double" in manifest.read_text().split("name: plan")[1].split("\n")[1]
    example = root / "models/churn-catboost/example.json"
    example.write_text(json.dumps({"inputs": [{**r, "plan": 1.0} for r in ROWS]}))
    result = run_cli("validate", "models/churn-catboost", cwd=root)
    assert result.code == 1 and "Traceback" not in result.err + result.out
    assert "'plan' is a categorical feature of the model" in result.out + result.err
    assert "type it string or integer or long" in result.out + result.err


def test_integer_categories_in_a_signature_of_numbers(tmp_path: Path) -> None:
    """`plan` as integer codes (a long column): the runner's batch of numbers is float64, and the category
    reaches CatBoost as an int, as it was trained on."""
    import catboost

    rng = np.random.default_rng(1)
    codes, tenure = rng.integers(0, 3, 300), rng.uniform(0, 60, 300)
    frame = pd.DataFrame({"plan": codes, "tenure": tenure})
    model = catboost.CatBoostClassifier(iterations=20, depth=2, thread_count=1, random_seed=0, verbose=False,
                                         allow_writing_files=False, cat_features=["plan"])
    model.fit(frame, (codes == 2) & (tenure < 30))
    model.save_model(str(tmp_path / "model.cbm"))
    from modelops.manifest.model import Column

    inputs = [Column(name="plan", type="long"), Column(name="tenure", type="double")]
    rows = np.array([[2.0, 10.0], [0.0, 10.0], [2.0, 50.0], [1.0, 5.0]])  # as the runner's float64 batch
    predicted = flavors.load("catboost", tmp_path / "model.cbm", inputs, "predict_proba").predict(rows)
    own = model.predict_proba(pd.DataFrame({"plan": rows[:, 0].astype(int), "tenure": rows[:, 1]}))
    np.testing.assert_allclose(predicted, own, rtol=1e-12, atol=0)
    assert predicted[0, 1] > 0.5 > predicted[1, 1]  # the category decides
    with pytest.raises(ModelopsError, match="cannot take as null") as refused:
        flavors.load("catboost", tmp_path / "model.cbm", [Column(name="plan", type="long", required=False),
                                                          inputs[1]])
    assert refused.value.problem.field == "signature.inputs"
