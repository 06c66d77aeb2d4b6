"""The method a registered version answers (its `modelops.method` tag, else its MLmodel) against the manifest's:
a registered version never changes, so another method is refused; a missing tag is restored from the MLmodel.
Against a real `mlflow server`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelops import artifacts
from modelops import settings as modelops_settings
from modelops.errors import ModelopsError
from modelops.flavors.python_function import answered_method
from modelops.registry.client import Registry, _mlmodel_method
from modelops.workspace import Workspace
from tests.registry.helpers import run, snapshot

PROBABILITIES = ("    - {name: p_setosa, type: double, label: setosa}\n"
                 "    - {name: p_versicolor, type: double, label: versicolor}\n"
                 "    - {name: p_virginica, type: double, label: virginica}\n")


@pytest.mark.parametrize(("spec", "method"), [
    ({"flavors": {"python_function": {"loader_module": "_modelops_0123456789ab.flavors.mlflow_entry",
                                      "config": {"method": "predict_proba"}, "predict_fn": "predict"}}},
     "predict_proba"),  # modelops' entry: its model_config says
    ({"flavors": {"python_function": {"loader_module": "team.model", "config": {"method": "predict_proba"}}}},
     "predict"),  # another model's config is its own
    ({"flavors": {"python_function": {"predict_fn": "predict_proba"}}}, "predict_proba"),
    ({"flavors": {"python_function": {"predict_fn": "decision_function"}}}, "decision_function"),  # no manifest's
    ({"flavors": {"python_function": {"config": {"method": "other"}}}}, "predict"),
    ({"flavors": {"sklearn": {}}}, "predict"),
    ({"flavors": "nonsense"}, "predict"),
    ("not a mapping", ""),
])
def test_the_method_an_mlmodel_answers(spec: object, method: str) -> None:
    assert answered_method(spec) == method


def labels_manifest(folder: Path) -> str:
    """iris-proba's manifest (as copied into `folder`) answering labels, with its first version alone."""
    text = (folder / "model.yaml").read_text()
    text = text.replace("method: predict_proba", "method: predict").replace(
        PROBABILITIES, "    - {name: species, type: string}\n")
    return text.split("  - version: 1.1.0")[0] + "deployments:\n  production: {version: 1.0.0}\n"


def test_another_method_for_a_registered_version_is_refused_with_nothing_written(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-method": "iris-proba"})
    folder, uri = root / "models/iris-method", mlflow_server.uri
    probabilities = labels_manifest(folder).replace("method: predict", "method: predict_proba").replace(
        "    - {name: species, type: string}\n", PROBABILITIES)
    (folder / "model.yaml").write_text(labels_manifest(folder))
    run(root, "apply", "models/iris-method", uri=uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_model_version("iris-method", "1").tags["modelops.method"] == "predict"
    before = snapshot(uri, "iris-method")

    (folder / "model.yaml").write_text(probabilities)
    error = ("models/iris-method/model.yaml:6: method: iris-method 1.0.0 (MLflow version 1) is registered answering "
             "predict (its tag modelops.method); the manifest says predict_proba\n  hint: a registered version never "
             "changes: to serve predict_proba, list the artifact again as a new version (modelops release) in place "
             "of this one (it stays in MLflow), or set method back to predict; if modelops.method was edited by "
             "hand, restore it\n")
    plan = run(root, "plan", "models/iris-method", uri=uri, check=1)
    assert plan.stdout == "0 action(s), 1 drift (1 blocks apply)\n"
    assert plan.stderr == error
    drift = json.loads(run(root, "plan", "--format", "json", "models/iris-method", uri=uri, check=1).stdout)["drift"]
    assert [(d["kind"], d["blocking"]) for d in drift] == [("method", True)]

    refused = run(root, "apply", "models/iris-method", uri=uri, check=1)
    assert (refused.stdout, refused.stderr) == ("", error)
    assert snapshot(uri, "iris-method") == before


def booster_probabilities(folder: Path) -> None:
    """wine-xgboost's manifest (as copied into `folder`) answering one probability per cultivar: registered with
    modelops' python_function entry, whose model config names the method."""
    manifest = folder / "model.yaml"
    outputs = "".join(f"    - {{name: p_{k}, type: double, label: {k}}}\n" for k in range(3))
    manifest.write_text(manifest.read_text().replace("    - {name: cultivar, type: long}\n", outputs).replace(
        "flavor: xgboost\n", "flavor: xgboost\nmethod: predict_proba\n"))
    example = folder / "example.json"
    example.write_text(json.dumps({"inputs": json.loads(example.read_text())["inputs"]}))


def test_a_removed_method_tag_is_restored_from_the_mlmodel_then_nothing_to_do(make_repo, mlflow_server) -> None:
    root = make_repo(**{"iris-retag": "iris-proba", "wine-retag": "wine-xgboost"})
    booster_probabilities(root / "models/wine-retag")
    uri, models = mlflow_server.uri, ("models/iris-retag", "models/wine-retag")
    run(root, "apply", *models, uri=uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # a .skops file wrapped by apply, an MLflow directory saved with predict_proba, a booster behind modelops' entry
    for name, number in (("iris-retag", "1"), ("wine-retag", "1")):
        client.delete_model_version_tag(name, number, "modelops.method")
    client.set_model_version_tag("iris-retag", "2", "modelops.method", "Predict")  # edited to no method

    plan = run(root, "plan", "--detailed-exitcode", *models, uri=uri, check=2).stdout
    assert "  + update iris-retag 1.0.0 (MLflow version 1): set modelops.method\n" in plan
    for subject in ("iris-retag 1.0.0 (MLflow version 1)", "wine-retag 1.0.0 (MLflow version 1)"):
        assert f"  ! drift: {subject}: tag modelops.method is missing (its MLmodel answers predict_proba)\n" in plan
    assert "  ! drift: iris-retag 1.1.0 (MLflow version 2): tag modelops.method was 'Predict' (its MLmodel answers " \
           "predict_proba)\n" in plan
    run(root, "apply", *models, uri=uri)
    methods = {v.tags["modelops.method"] for name in ("iris-retag", "wine-retag")
               for v in client.search_model_versions(f"name = '{name}'")}
    assert methods == {"predict_proba"}
    again = run(root, "plan", "--format", "json", "--detailed-exitcode", *models, uri=uri)
    assert json.loads(again.stdout) == {"actions": [], "drift": [], "notes": []}


def test_tagged_versions_are_read_without_their_mlmodel(make_repo, mlflow_server, monkeypatch) -> None:
    root = make_repo(**{"iris-tagged": "iris-proba"})
    run(root, "apply", "models/iris-tagged", uri=mlflow_server.uri)
    ws = Workspace(root)
    ws.settings = replace(modelops_settings.load(root), tracking_uri=mlflow_server.uri)
    downloads: Counter = Counter()
    original = artifacts.download_data

    def counted(uri: str, folder: Path) -> Path:
        downloads[uri] += 1
        return original(uri, folder)

    monkeypatch.setattr(artifacts, "download_data", counted)
    registry = Registry(ws)
    assert registry.read_one("iris-tagged") is not None and downloads == Counter()
    MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri).delete_model_version_tag(
        "iris-tagged", "2", "modelops.method")
    versions = {v.number: v for v in registry.read_one("iris-tagged").versions}
    assert versions["2"].method == "predict_proba" and versions["2"].mlmodel_method == "predict_proba"
    registry.read(["iris-tagged"])  # read once per version
    assert downloads == Counter({"models:/iris-tagged/2/MLmodel": 1})
    with pytest.raises(ModelopsError, match="models:/iris-tagged/9/MLmodel"):  # never assumed: the plan stops
        _mlmodel_method("models:/iris-tagged/9")
