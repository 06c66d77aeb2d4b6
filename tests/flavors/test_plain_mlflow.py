"""Registered versions whose MLflow flavor alone would answer something else than the runner (a booster's or a
graph's class probabilities, a LightGBM classifier's labels): `apply` registers them with modelops' python_function
entry, and plain MLflow, in a process that cannot import an installed modelops, answers what the runner answers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from modelops import flavors
from modelops.artifacts import digest
from modelops.flavors import mlflow_entry
from modelops.manifest.loading import load as load_manifest
from tests.conftest import ROOT, run_cli
from tests.flavors.native import IRIS_INPUTS, make_catboost_model, pins
from tests.flavors.test_onnx import make_onnx_model
from tests.runner.conftest import Servers

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
WINE = json.loads((ROOT / "models" / "wine-xgboost" / "example.json").read_text())["inputs"]


def _edit(folder: Path, method: str, labels: list, kind: str = "double", uri: str | None = None) -> None:
    """The manifest of `folder` serving `method` (predict_proba: one double column per label; predict: one
    `kind` column), its example without outputs, and its artifact at `uri` when given."""
    path = folder / "model.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["name"] = folder.name
    manifest["method"] = method
    manifest["signature"]["outputs"] = ([{"name": f"p_{label}", "type": "double", "label": label} for label in labels]
                                        if method == "predict_proba" else [{"name": "species", "type": kind}])
    if uri:
        manifest["versions"] = [{"version": "1.0.0", "artifact": {"uri": uri, "sha256": digest(folder / uri)}}]
    manifest["deployments"] = {"production": {"version": manifest["versions"][0]["version"]}}
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    example = folder / "example.json"
    example.write_text(json.dumps({"inputs": json.loads(example.read_text())["inputs"]}))


def _lightgbm(folder: Path) -> None:
    """An iris LightGBM classifier (3 classes) as one model text file, its example and requirements."""
    import lightgbm
    from sklearn.datasets import load_iris

    data = load_iris()
    booster = lightgbm.train({"objective": "multiclass", "num_class": 3, "num_leaves": 4, "verbose": -1,
                              "num_threads": 1}, lightgbm.Dataset(data.data, data.target), num_boost_round=5)
    (folder / "artifacts" / "1.0.0").mkdir(parents=True)
    booster.save_model(str(folder / "artifacts/1.0.0/model.txt"))
    manifest = {"name": folder.name, "description": "Iris species, by a LightGBM classifier", "owners": ["@ml-team"],
                "flavor": "lightgbm", "signature": {"inputs": [{"name": n, "type": "double"} for n in IRIS_INPUTS],
                                                    "outputs": [{"name": "species", "type": "long"}]},
                "example": "example.json", "requirements": "requirements.txt",
                "versions": [{"version": "1.0.0", "artifact": {"uri": "artifacts/1.0.0/model.txt", "sha256": ""}}]}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "example.json").write_text(json.dumps({"inputs": [dict(zip(IRIS_INPUTS, r, strict=True)) for r in ROWS]}))
    (folder / "requirements.txt").write_text(pins("lightgbm", "numpy", "scipy"))


def _xgboost_binary(folder: Path) -> None:
    """An iris XGBoost classifier of two classes (virginica or not, binary:logistic) as one .ubj file."""
    import xgboost
    from sklearn.datasets import load_iris

    data = load_iris()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(data.data, data.target == 2)
    (folder / "artifacts" / "1.0.0").mkdir(parents=True)
    model.save_model(str(folder / "artifacts/1.0.0/model.ubj"))
    manifest = {"name": folder.name, "description": "Virginica or not, by an XGBoost classifier",
                "owners": ["@ml-team"], "flavor": "xgboost",
                "signature": {"inputs": [{"name": n, "type": "double"} for n in IRIS_INPUTS],
                              "outputs": [{"name": "virginica", "type": "long"}]},
                "example": "example.json", "requirements": "requirements.txt",
                "versions": [{"version": "1.0.0", "artifact": {"uri": "artifacts/1.0.0/model.ubj", "sha256": ""}}]}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "example.json").write_text(json.dumps({"inputs": [dict(zip(IRIS_INPUTS, r, strict=True)) for r in ROWS]}))
    (folder / "requirements.txt").write_text(pins("xgboost-cpu", "numpy", "scipy"))


def _optional(folder: Path, column: str) -> None:
    path = folder / "model.yaml"
    manifest = yaml.safe_load(path.read_text())
    for entry in manifest["signature"]["inputs"]:
        if entry["name"] == column:
            entry["required"] = False
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def _xgboost_directory(folder: Path) -> None:
    """wine-xgboost's booster as an MLflow xgboost model directory of an XGBClassifier (plain MLflow: labels)."""
    import mlflow.xgboost
    import xgboost

    model = xgboost.XGBClassifier()
    model.load_model(str(folder / "artifacts/1.0.0/model.ubj"))
    mlflow.xgboost.save_model(model, str(folder / "artifacts/mlflow"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven models that plain MLflow's own flavors would answer differently, applied to the embedded MLflow."""
    root = tmp_path_factory.mktemp("plain-mlflow") / "repo"
    models = root / "models"
    shutil.copytree(ROOT / "models" / "wine-xgboost", models / "wine-xgboost-proba")
    _edit(models / "wine-xgboost-proba", "predict_proba", [0, 1, 2])
    shutil.copytree(ROOT / "models" / "wine-xgboost", models / "wine-xgboost-dir")
    _xgboost_directory(models / "wine-xgboost-dir")
    _edit(models / "wine-xgboost-dir", "predict_proba", [0, 1, 2], uri="artifacts/mlflow")
    make_catboost_model(models / "iris-catboost-proba")
    _edit(models / "iris-catboost-proba", "predict_proba", ["setosa", "versicolor", "virginica"])
    make_onnx_model(root)
    (models / "iris-onnx").rename(models / "iris-onnx-proba")
    _edit(models / "iris-onnx-proba", "predict_proba", [0, 1, 2])
    for name, method in (("iris-lightgbm", "predict"), ("iris-lightgbm-proba", "predict_proba")):
        _lightgbm(models / name)
        _edit(models / name, method, [0, 1, 2], kind="long", uri="artifacts/1.0.0/model.txt")
    _optional(models / "iris-lightgbm-proba", "petal_width")
    _xgboost_binary(models / "iris-xgboost-binary")
    _edit(models / "iris-xgboost-binary", "predict_proba", [0, 1], uri="artifacts/1.0.0/model.ubj")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    assert run_cli("codeowners", cwd=root).code == 0
    env = {"MODELOPS_CACHE": str(root.parent / "cache"), "MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""}
    validated = run_cli("validate", cwd=root, env=env)
    assert validated.code == 0, validated.out + validated.err
    applied = run_cli("apply", cwd=root, env=env)
    assert applied.code == 0, applied.err
    return root


# Plain MLflow predicting on each model's example (and on iris-lightgbm-proba's without its optional column).
# With "absent", the repository's package is taken off sys.path before anything is imported: modelops is not
# installed there. With "installed", it is, and stays importable whole after the models have loaded.
_PLAIN = """
import json, sys
from pathlib import Path
scripts, uri, modelops, requests = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if modelops == "absent":
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != scripts]
import mlflow, pandas as pd
mlflow.set_tracking_uri(uri)
out = {}
for key, name, rows in requests:
    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    out[key] = {"predicted": model.predict(pd.DataFrame(rows)).tolist(),
                "loader": model.metadata.flavors["python_function"]["loader_module"]}
out["packages"] = sorted(m for m in sys.modules if m.split(".")[0].startswith("_modelops_") and "." not in m)
if modelops == "installed":
    import modelops.manifest.loading
    out["modelops"] = modelops.__file__
else:
    out["modelops"] = "modelops" in sys.modules
print(json.dumps(out))
"""
NAMES = ("wine-xgboost-proba", "wine-xgboost-dir", "iris-catboost-proba", "iris-onnx-proba", "iris-lightgbm",
         "iris-lightgbm-proba", "iris-xgboost-binary")
WITHOUT = "iris-lightgbm-proba without petal_width"


def _inputs(repo: Path, name: str) -> list[dict]:
    return json.loads((repo / "models" / name / "example.json").read_text())["inputs"]


@pytest.fixture(scope="module", params=["absent", "installed"])
def plain(repo: Path, request: pytest.FixtureRequest) -> dict:
    """What plain MLflow answers for each model, in a process where modelops is absent, or installed."""
    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    requests = [(name, name, _inputs(repo, name)) for name in NAMES]
    requests.append((WITHOUT, "iris-lightgbm-proba",
                     [{k: v for k, v in row.items() if k != "petal_width"} for row in _inputs(repo, NAMES[5])]))
    done = subprocess.run([sys.executable, "-c", _PLAIN, str(ROOT / "scripts"), uri, request.param,
                           json.dumps(requests)], capture_output=True, text=True, cwd=repo.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "case": request.param}


def test_plain_mlflow_loads_the_package_copied_into_the_registered_model(plain: dict) -> None:
    assert all(mlflow_entry.is_loader(plain[name]["loader"]) for name in NAMES)
    (package,) = plain["packages"]  # one copy for all seven: the same modelops registered them
    assert plain[NAMES[0]]["loader"] == f"{package}.flavors.mlflow_entry"
    if plain["case"] == "installed":  # the installed modelops is left whole, and is the repository's
        assert Path(plain["modelops"]).resolve() == (ROOT / "scripts" / "modelops" / "__init__.py").resolve()
    else:
        assert plain["modelops"] is False


@pytest.mark.parametrize("name", [*NAMES, WITHOUT])
def test_plain_mlflow_answers_what_the_runner_answers(repo: Path, plain: dict, name: str) -> None:
    model = name.split()[0]
    folder = repo / "models" / model
    manifest = load_manifest(folder, repo).manifest
    artifact = folder / manifest.versions[0].artifact.uri
    rows = _inputs(repo, model)
    x = np.array([[row[c.name] for c in manifest.signature.inputs] for row in rows], dtype=np.float64)
    if name == WITHOUT:
        x[:, IRIS_INPUTS.index("petal_width")] = np.nan  # the runner's null of an optional column
    runner = flavors.load(manifest.flavor, artifact, manifest.signature.inputs, manifest.method).predict(x)
    predicted = np.asarray(plain[name]["predicted"])
    if manifest.method == "predict_proba":
        assert predicted.shape == (len(rows), len(manifest.signature.outputs))
        np.testing.assert_allclose(predicted, runner, rtol=0, atol=1e-12)
        np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-6)
    else:
        assert predicted.tolist() == runner.tolist() and set(predicted.tolist()) <= {0, 1, 2}


def test_probabilities_are_the_frameworks_own(repo: Path, plain: dict) -> None:
    """Against each framework's own predict_proba, not the flavor's: xgboost's binary and multi-class, catboost."""
    import catboost
    import xgboost

    for name, model in (("wine-xgboost-proba", xgboost.XGBClassifier()),
                        ("iris-xgboost-binary", xgboost.XGBClassifier()),
                        ("iris-catboost-proba", catboost.CatBoostClassifier())):
        folder = repo / "models" / name
        manifest = load_manifest(folder, repo).manifest
        model.load_model(str(folder / manifest.versions[0].artifact.uri))
        x = np.array([[row[c.name] for c in manifest.signature.inputs] for row in _inputs(repo, name)])
        np.testing.assert_allclose(plain[name]["predicted"], model.predict_proba(x), rtol=1e-6, atol=1e-7)


def test_the_framework_flavor_still_loads_the_raw_model(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import mlflow.xgboost
    import xgboost

    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    model = mlflow.xgboost.load_model("models:/wine-xgboost-proba@production")
    assert isinstance(model, xgboost.Booster) and model.num_features() == len(WINE[0])


def test_apply_again_registers_nothing(repo: Path) -> None:
    env = {"MODELOPS_CACHE": str(repo.parent / "cache"), "MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""}
    again = run_cli("apply", cwd=repo, env=env)
    assert again.code == 0, again.err
    assert "nothing to do" in again.out, again.out


# -- serve models:/ ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registered(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`modelops serve models:/iris-catboost-proba@production` from the repository's registry."""
    servers = Servers(tmp_path_factory.mktemp("serve-registered"))
    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    yield servers.start("models:/iris-catboost-proba@production", env={"MLFLOW_TRACKING_URI": uri})
    servers.stop_all()


def test_a_registered_version_of_probabilities_is_served_as_probabilities(repo: Path,
                                                                           registered: httpx.Client) -> None:
    rows = _inputs(repo, "iris-catboost-proba")
    folder = repo / "models" / "iris-catboost-proba"
    manifest = load_manifest(folder, repo).manifest
    x = np.array([[row[n] for n in IRIS_INPUTS] for row in rows], dtype=np.float64)
    want = flavors.load("catboost", folder / manifest.versions[0].artifact.uri, manifest.signature.inputs,
                        "predict_proba").predict(x)
    outputs = ["p_setosa", "p_versicolor", "p_virginica"]
    answer = registered.post("/predict", json={"inputs": rows}).json()
    assert [list(record) for record in answer["outputs"]] == [outputs] * len(rows)
    np.testing.assert_allclose([[r[n] for n in outputs] for r in answer["outputs"]], want, rtol=1e-12, atol=0)
    invocations = registered.post("/invocations", json={"dataframe_records": rows}).json()["predictions"]
    np.testing.assert_allclose(invocations, want, rtol=1e-12, atol=0)
    body = {"inputs": [{"name": n, "shape": [len(rows)], "datatype": "FP64", "data": list(x[:, j])}
                       for j, n in enumerate(IRIS_INPUTS)]}
    (tensor,) = registered.post("/v2/models/iris-catboost-proba/infer", json=body).json()["outputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("probabilities", "FP64", [len(rows), 3])
    np.testing.assert_allclose(np.reshape(tensor["data"], (len(rows), 3)), want, rtol=1e-12, atol=0)
    metadata = registered.get("/v2/models/iris-catboost-proba").json()
    assert metadata["outputs"][0]["parameters"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_a_directory_taken_back_out_of_the_registry_is_registered_with_the_manifests_method(
        repo: Path, tmp_path: Path) -> None:
    """wine-xgboost-proba's registered directory (behind the entry, predict_proba), as the artifact of a model
    that serves labels: apply writes the entry anew, with method predict."""
    import mlflow.artifacts

    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    root = tmp_path / "repo"
    shutil.copytree(repo / "models" / "wine-xgboost-proba", root / "models" / "wine-labels")
    shutil.copytree(repo / "templates", root / "templates")
    shutil.copyfile(repo / "pyproject.toml", root / "pyproject.toml")
    folder = root / "models" / "wine-labels"
    mlflow.set_tracking_uri(uri)
    mlflow.artifacts.download_artifacts("models:/wine-xgboost-proba@production", dst_path=str(folder / "artifacts/dl"))
    _edit(folder, "predict", [], kind="long", uri="artifacts/dl")
    assert run_cli("codeowners", cwd=root).code == 0
    env = {"MODELOPS_CACHE": str(tmp_path / "cache"), "MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""}
    applied = run_cli("apply", cwd=root, env=env)
    assert applied.code == 0, applied.err
    rows = _inputs(repo, "wine-xgboost-proba")
    registered = f"sqlite:///{root / '.modelops/mlflow.db'}"
    done = subprocess.run([sys.executable, "-c", _PLAIN, str(ROOT / "scripts"), registered, "absent",
                           json.dumps([["wine-labels", "wine-labels", rows]])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = json.loads(done.stdout.strip().splitlines()[-1])["wine-labels"]["predicted"]
    manifest = load_manifest(folder, root).manifest
    x = np.array([[row[c.name] for c in manifest.signature.inputs] for row in rows], dtype=np.float64)
    assert predicted == flavors.load("xgboost", folder / "artifacts/dl", manifest.signature.inputs).predict(x).tolist()
