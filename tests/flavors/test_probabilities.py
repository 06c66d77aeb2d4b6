"""Class probabilities (`method: predict_proba`), from the artifact to the image: validate, apply (plain
MLflow predicts probabilities too), serve (three protocols against scikit-learn in-process), shadow
agreement within the tolerance, build and smoke."""

from __future__ import annotations

import io
import json
import pickle
import re
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version as installed
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from modelops.artifacts import digest
from modelops.signature.probabilities import agreeing_probabilities
from tests.conftest import run_cli
from tests.images import harness
from tests.images.conftest import base_image, docker_client, image_repo  # noqa: F401  (fixtures)
from tests.runner.conftest import ROOT, Servers, asgi

PROBA = ROOT / "models" / "iris-proba"
MANIFEST = "models/iris-proba/model.yaml"
EXAMPLE = json.loads((PROBA / "example.json").read_text())["inputs"]
NAMES = list(EXAMPLE[0])
ROWS = [[r[n] for n in NAMES] for r in EXAMPLE]
CLASSES = ["setosa", "versicolor", "virginica"]
OUTPUTS = [f"p_{c}" for c in CLASSES]


def reference(version: str) -> np.ndarray:
    """scikit-learn's own predict_proba of a version of iris-proba on the example, in this process."""
    if version == "1.0.0":
        path = PROBA / "artifacts/1.0.0/model.skops"
        model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    else:
        model = pickle.loads((PROBA / "artifacts/1.1.0/model.pkl").read_bytes())
    assert model.classes_.tolist() == CLASSES
    return model.predict_proba(np.array(ROWS))


# -- validate -------------------------------------------------------------------------------------

def _edit(repo: Path, old: str, new: str, file: str = MANIFEST) -> None:
    path = repo / file
    assert old in path.read_text(), old
    path.write_text(path.read_text().replace(old, new, 1))


def _no_predict_proba(repo: Path) -> None:
    """Version 1.0.0 becomes an SVC without probability=True: it has no predict_proba."""
    data = load_iris()
    path = repo / "models/iris-proba/artifacts/1.0.0/svc.pkl"
    joblib.dump(SVC().fit(data.data, data.target_names[data.target]), path)
    _edit(repo, "uri: artifacts/1.0.0/model.skops", "uri: artifacts/1.0.0/svc.pkl")
    _edit(repo, digest(PROBA / "artifacts/1.0.0/model.skops"), digest(path))


def _mlmodel_predicts_labels(repo: Path) -> None:
    """Version 1.1.0's MLmodel makes plain MLflow answer labels (predict_fn: predict)."""
    folder = repo / "models/iris-proba/artifacts/1.1.0"
    before = digest(folder)
    _edit(repo, "predict_fn: predict_proba", "predict_fn: predict", "models/iris-proba/artifacts/1.1.0/MLmodel")
    _edit(repo, before, digest(folder))


def _as_pyfunc(repo: Path) -> None:
    """flavor: pyfunc, both versions the MLflow directory (its MLmodel says predict_fn: predict_proba)."""
    _edit(repo, "flavor: sklearn", "flavor: pyfunc")
    _edit(repo, "uri: artifacts/1.0.0/model.skops", "uri: artifacts/1.1.0/")
    _edit(repo, digest(PROBA / "artifacts/1.0.0/model.skops"), digest(PROBA / "artifacts/1.1.0"))
    requirements = repo / "models" / "iris-proba" / "requirements.txt"  # what a pyfunc image runs on
    requirements.write_text(requirements.read_text() + f"mlflow-skinny=={installed('mlflow-skinny')}\n"
                            f"pandas=={installed('pandas')}\n")


CLASS_ORDER = "declare one double output per class, in the model's order: label: 'setosa', label: 'versicolor', " \
              "label: 'virginica'"
# (id, edit, field, words in the message, words in the hint)
BAD = [
    ("wrong width", lambda r: _edit(r, "    - {name: p_virginica, type: double, label: virginica}\n", ""),
     "signature.outputs", "version 1.0.0: the model has 3 classes; the signature declares 2 output column(s)",
     CLASS_ORDER),
    ("labels out of order", lambda r: (_edit(r, "label: setosa}", "label: versicolor}"),
                                       _edit(r, "p_versicolor, type: double, label: versicolor", "p_versicolor, "
                                             "type: double, label: setosa")),
     "signature.outputs", "the labels ['versicolor', 'setosa', 'virginica'] are not the model's classes", CLASS_ORDER),
    ("numbers for string classes",
     lambda r: [_edit(r, f"label: {c}}}", f"label: {k}}}") for k, c in enumerate(CLASSES)],
     "signature.outputs", "the labels [0, 1, 2] are not the model's classes ['setosa', 'versicolor', 'virginica']",
     CLASS_ORDER),
    ("no predict_proba", _no_predict_proba, "method", "version 1.0.0: sklearn: SVC has no predict_proba",
     "SVC(probability=True)"),
    ("MLmodel answers labels", _mlmodel_predicts_labels, "method",
     "version 1.1.0: its MLmodel makes MLflow answer predict, the manifest says method: predict_proba",
     "pyfunc_predict_fn='predict_proba'"),
    ("pyfunc of labels", lambda r: (_as_pyfunc(r), _mlmodel_predicts_labels(r)), "method",
     "pyfunc: its MLmodel serves predict, not predict_proba", "pyfunc_predict_fn='predict_proba'"),
]


def test_the_example_validates(repo: Path) -> None:
    result = run_cli("validate", "models/iris-proba", cwd=repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


def test_pyfunc_serves_probabilities_when_its_mlmodel_does(repo: Path) -> None:
    _as_pyfunc(repo)
    result = run_cli("validate", "models/iris-proba", cwd=repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


@pytest.mark.parametrize(("edit", "field", "words", "hint"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_model_that_does_not_fit_its_probability_outputs_is_located(repo: Path, edit: Callable, field: str,
                                                                       words: str, hint: str) -> None:
    edit(repo)
    result = run_cli("validate", "models/iris-proba", cwd=repo)
    assert result.code == 1, result.out
    assert "Traceback" not in result.err
    assert re.search(rf"^{re.escape(MANIFEST)}:\d+: {re.escape(field)}: .*{re.escape(words)}", result.err,
                     re.MULTILINE), result.err
    assert f"hint: {hint}" in result.err or hint in result.err.split("hint: ", 1)[1], result.err


# -- apply: plain MLflow ----------------------------------------------------------------------------

def test_apply_registers_versions_that_plain_mlflow_scores_as_probabilities(repo: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    result = run_cli("apply", "models/iris-proba", cwd=repo)
    assert result.code == 0, result.err
    uri = f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for alias, version in (("production", "1.0.0"), ("staging", "1.1.0")):
        model = mlflow.pyfunc.load_model(f"models:/iris-proba@{alias}")  # 1.0.0: the .skops file, wrapped
        predicted = model.predict(pd.DataFrame(EXAMPLE))
        np.testing.assert_allclose(np.asarray(predicted), reference(version), rtol=1e-12, atol=0)


# -- serve: the three protocols ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`modelops serve models/iris-proba` (production: 1.0.0, shadow 1.1.0) for the module."""
    servers = Servers(tmp_path_factory.mktemp("iris-proba"))
    yield servers.start(str(PROBA), "--env", "production")
    servers.stop_all()


def _close(got: object, want: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=1e-12, atol=0)


def test_invocations_answer_mlflows_list_of_lists(production: httpx.Client) -> None:
    answer = production.post("/invocations", json={"dataframe_split": {"columns": NAMES, "data": ROWS}}).json()
    assert list(answer) == ["predictions"] and [len(row) for row in answer["predictions"]] == [3, 3, 3]
    _close(answer["predictions"], reference("1.0.0"))
    csv = ",".join(NAMES) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS)
    _close(production.post("/invocations", content=csv, headers={"Content-Type": "text/csv"}).json()["predictions"],
           reference("1.0.0"))


def test_predict_answers_one_field_per_class(production: httpx.Client) -> None:
    answer = production.post("/predict", json={"inputs": EXAMPLE}).json()
    assert answer["version"] == "1.0.0"
    assert [list(record) for record in answer["outputs"]] == [OUTPUTS] * 3
    _close([[record[name] for name in OUTPUTS] for record in answer["outputs"]], reference("1.0.0"))
    schema = production.get("/openapi.json").json()["components"]["schemas"]["IrisProbaOutput"]
    assert schema["properties"]["p_virginica"]["description"] == "probability of class 'virginica'"


def test_v2_answers_one_classes_wide_fp64_tensor(production: httpx.Client) -> None:
    body = {"inputs": [{"name": n, "shape": [3], "datatype": "FP64", "data": [r[j] for r in ROWS]}
                       for j, n in enumerate(NAMES)]}
    for path, version in (("/v2/models/iris-proba/infer", "1.0.0"), ("/v2/models/iris-proba/versions/1.1.0/infer",
                                                                     "1.1.0")):
        answer = production.post(path, json=body).json()
        (tensor,) = answer["outputs"]
        assert (answer["model_version"], tensor["name"], tensor["datatype"], tensor["shape"]) == \
            (version, "probabilities", "FP64", [3, 3])
        _close(np.reshape(tensor["data"], (3, 3)), reference(version))
    assert production.get("/v2/models/iris-proba").json()["outputs"] == [
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3], "parameters": {"labels": CLASSES}}]


def test_mlflows_client_reads_the_probabilities(production: httpx.Client) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient("127.0.0.1", production.base_url.port)
    _close(client.invoke(pd.DataFrame(EXAMPLE)).get_predictions().to_numpy(), reference("1.0.0"))


def test_invocations_answer_what_mlflow_models_serve_answers(tmp_path: Path) -> None:
    """`mlflow models serve` answers predictions_to_json(pyfunc.predict(frame)): the same body as ours."""
    import mlflow.pyfunc
    from mlflow.pyfunc.scoring_server import predictions_to_json

    buffer = io.StringIO()
    predictions_to_json(mlflow.pyfunc.load_model(str(PROBA / "artifacts/1.1.0")).predict(pd.DataFrame(EXAMPLE)), buffer)
    with asgi(PROBA, "staging") as client:
        ours = client.post("/invocations", json={"dataframe_records": EXAMPLE}).json()
    assert ours == json.loads(buffer.getvalue())


def test_a_version_whose_classes_are_not_the_labels_is_not_served(tmp_path: Path) -> None:
    folder = _two_close_classifiers(tmp_path / "close")
    manifest = yaml.safe_load((folder / "model.yaml").read_text())
    manifest["signature"]["outputs"][0]["label"] = 3
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with asgi(folder, version="1.0.0", ready=False) as client:
        deadline = time.monotonic() + 30
        while (health := client.get("/ready")).json()["problem"] == "the model is loading" \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health.status_code == 503
        assert health.json()["problem"] == (
            "version 1.0.0: the labels [3, 1, 2] are not the model's classes [0, 1, 2], in order (hint: declare "
            "one double output per class, in the model's order: label: 0, label: 1, label: 2)")
        assert client.post("/predict", json={"inputs": EXAMPLE}).status_code == 503


# -- shadow agreement within the tolerance ---------------------------------------------------------

def _two_close_classifiers(folder: Path) -> Path:
    """A model folder whose production serves a logistic regression, shadowed by a slightly different one
    (integer classes: labels 0, 1, 2)."""
    data = load_iris()
    entries = []
    for number, c in (("1.0.0", 1.0), ("1.1.0", 1.01)):
        path = folder / "artifacts" / f"{number}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(LogisticRegression(C=c, max_iter=1000).fit(data.data, data.target), path)
        entries.append({"version": number, "artifact": {"uri": f"artifacts/{number}.pkl", "sha256": digest(path)}})
    manifest = {"name": "close", "description": "Two close classifiers", "owners": ["@ml-team"], "flavor": "sklearn",
                "method": "predict_proba",
                "signature": {"inputs": [{"name": n, "type": "double"} for n in NAMES],
                              "outputs": [{"name": f"p{k}", "type": "double", "label": k} for k in range(3)]},
                "versions": entries, "deployments": {"production": {"version": "1.0.0", "shadow": ["1.1.0"]}}}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def _shadow_rows(client, rows: int) -> dict[str, float]:
    deadline = time.monotonic() + 10
    while True:
        found = dict(re.findall(r'modelops_shadow_rows_total\{outcome="(\w+)",version="1.1.0"\} ([\d.]+)',
                                client.get("/metrics").text))
        if sum(map(float, found.values())) >= rows or time.monotonic() > deadline:
            return {outcome: float(value) for outcome, value in found.items()}
        time.sleep(0.05)


@pytest.mark.parametrize(("tolerance", "agree"), [(None, 0.0), (0.01, 30.0)], ids=["default 1e-6", "0.01"])
def test_shadow_probabilities_agree_within_the_tolerance(tmp_path: Path, tolerance: float | None,
                                                         agree: float) -> None:
    folder = _two_close_classifiers(tmp_path / "close")
    data = load_iris().data[::5]  # 30 rows
    served = joblib.load(folder / "artifacts/1.0.0.pkl").predict_proba(data)
    shadow = joblib.load(folder / "artifacts/1.1.0.pkl").predict_proba(data)
    assert 1e-6 < np.abs(served - shadow).max() < 0.01  # close, not equal
    settings = {} if tolerance is None else {"shadow_tolerance": tolerance}
    with asgi(folder, "production", **settings) as client:
        answer = client.post("/invocations", json={"inputs": data.tolist()})
        _close(answer.json()["predictions"], served)
        assert _shadow_rows(client, 30) == {"agree": agree, "disagree": 30.0 - agree}


def test_within_the_tolerance_the_most_probable_class_must_still_be_the_same() -> None:
    served = np.array([[0.50, 0.50, 0.0], [0.2, 0.7, 0.1]])
    assert agreeing_probabilities(served, np.array([[0.49, 0.51, 0.0], [0.21, 0.69, 0.1]]), 0.05) == 1
    assert agreeing_probabilities(served, np.array([[0.51, 0.49, 0.0], [0.21, 0.69, 0.1]]), 0.05) == 2
    assert agreeing_probabilities(served, np.array([[0.51, 0.49, 0.0], [0.21, 0.69, 0.1]]), 0.001) == 0


# -- the image --------------------------------------------------------------------------------------

def test_the_probability_image_builds_and_smokes(image_repo: Path, docker_client) -> None:  # noqa: F811
    env = {"MODELOPS_IMAGE_REGISTRY": "modelops-tests/probabilities"}
    result = run_cli("build", "models/iris-proba", "--env", "production", "--format", "json", cwd=image_repo,
                     env=env, timeout=900)
    assert result.code == 0, result.err
    (image,) = json.loads(result.out)["images"]
    assert image["versions"] == ["1.0.0", "1.1.0"]
    try:
        smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=image_repo, timeout=300)
        assert smoked.code == 0, smoked.err
        assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"
    finally:
        harness.remove_image(docker_client, image["ref"])
