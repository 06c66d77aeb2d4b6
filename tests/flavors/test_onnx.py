"""The onnx flavor from artifact to image: validate, apply (plain MLflow loads it), serve (three protocols
agree with ONNX Runtime in-process), build and smoke; a graph whose inputs do not fit the signature."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelops.artifacts import digest
from modelops.errors import ModelopsError
from modelops.flavors import onnx
from modelops.manifest.model import Column
from tests.conftest import ROOT, run_cli
from tests.images import harness
from tests.runner.conftest import Servers

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
INPUTS = [Column(name=n, type="double") for n in NAMES]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]


def _graphs(folder: Path) -> dict[str, Path]:
    """1.0.0: one [N, 4] double tensor; 1.1.0: the same classifier fed one [N, 1] tensor per column."""
    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    whole = convert_sklearn(model, initial_types=[("input", DoubleTensorType([None, 4]))],
                            options={id(model): {"zipmap": False}})
    split = convert_sklearn(model, initial_types=[("features", DoubleTensorType([None, 4]))],
                            options={id(model): {"zipmap": False}})
    del split.graph.input[:]
    split.graph.input.extend(helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None, 1]) for n in NAMES)
    split.graph.node.insert(0, helper.make_node("Concat", NAMES, ["features"], axis=1))
    paths = {}
    for number, graph in (("1.0.0", whole), ("1.1.0", split)):
        paths[number] = folder / "artifacts" / number / "model.onnx"
        paths[number].parent.mkdir(parents=True)
        paths[number].write_bytes(graph.SerializeToString())
    return paths


def make_onnx_model(root: Path) -> Path:
    """models/iris-onnx in `root`: the iris logistic regression as two ONNX graphs, production on 1.0.0."""
    folder = root / "models" / "iris-onnx"
    paths = _graphs(folder)
    example = json.loads((ROOT / "models" / "iris" / "example.json").read_text())
    (folder / "example.json").write_text(json.dumps(example))
    (folder / "requirements.txt").write_text(f"onnxruntime=={version('onnxruntime')}\n")
    manifest = {"name": "iris-onnx", "description": "Iris species as an ONNX graph", "owners": ["@ml-team"],
                "flavor": "onnx", "signature": {"inputs": [{"name": n, "type": "double"} for n in NAMES],
                                                "outputs": [{"name": "species", "type": "long"}]},
                "example": "example.json",
                "versions": [{"version": n, "artifact": {"uri": f"artifacts/{n}/model.onnx", "sha256": digest(p)}}
                             for n, p in paths.items()],
                "deployments": {"production": {"version": "1.0.0"}}}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def onnx_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx") / "repo"
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    make_onnx_model(root)
    return root


def _in_process(path: Path, rows: list[list[float]]) -> tuple[list, np.ndarray]:
    """ONNX Runtime's own labels and probabilities for `rows`."""
    session = onnxruntime.InferenceSession(str(path))
    x = np.array(rows)
    feed = {"input": x} if len(session.get_inputs()) == 1 else {n: x[:, [j]] for j, n in enumerate(NAMES)}
    labels, probabilities = session.run(None, feed)
    return labels.tolist(), probabilities


def test_both_input_layouts_and_both_methods_load_in_process(onnx_repo: Path) -> None:
    artifacts = onnx_repo / "models" / "iris-onnx" / "artifacts"
    for number in ("1.0.0", "1.1.0"):
        labels, probabilities = _in_process(artifacts / number / "model.onnx", ROWS)
        assert onnx.load(artifacts / number / "model.onnx", INPUTS).predict(np.array(ROWS)).tolist() == labels
        proba = onnx.load(artifacts / number / "model.onnx", INPUTS, "predict_proba")
        assert proba.classes == [0, 1, 2]
        served = proba.predict(np.array(ROWS))
        assert served.dtype == np.float64 and served.shape == (4, 3)
        np.testing.assert_array_equal(served, probabilities)


def test_validate_loads_and_scores_the_graphs(onnx_repo: Path) -> None:
    result = run_cli("validate", "models/iris-onnx", cwd=onnx_repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


def test_a_graph_whose_inputs_do_not_fit_the_signature_is_a_located_error(onnx_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(onnx_repo / "models" / "iris-onnx", root / "models" / "iris-onnx")
    manifest = root / "models" / "iris-onnx" / "model.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["signature"]["inputs"] = data["signature"]["inputs"][:3]
    data.pop("example")
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("validate", "models/iris-onnx", cwd=root)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    # reported on the signature (its line), naming each version whose graph does not fit it
    line = 1 + next(n for n, text in enumerate(manifest.read_text().splitlines(), 1) if text.startswith("  inputs:"))
    assert f"models/iris-onnx/model.yaml:{line}: signature.inputs: version 1.0.0: " in result.err, result.err
    assert "the graph's inputs (input tensor(double)[None, 4]) do not fit the signature's 3 input columns" in result.err
    assert "version 1.1.0: " in result.err and "one tensor per column named as the column" in result.err
    assert "hint:" in result.err
    with pytest.raises(ModelopsError) as raised:
        onnx.load(root / "models/iris-onnx/artifacts/1.1.0/model.onnx", INPUTS[:3])
    assert raised.value.problem.field == "signature.inputs"
    assert "one tensor per column named as the column" in raised.value.problem.hint


def test_predict_proba_of_a_zipmap_graph_says_how_to_convert(tmp_path: Path) -> None:
    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(convert_sklearn(model, initial_types=[("input", FloatTensorType([None, 4]))])
                     .SerializeToString())  # ZipMap takes float32 probabilities
    with pytest.raises(ModelopsError) as raised:
        onnx.load(path, INPUTS, "predict_proba")
    assert raised.value.problem.field == "method" and "zipmap=False" in raised.value.problem.hint


def test_apply_registers_a_model_plain_mlflow_loads_and_scores(onnx_repo: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import pandas as pd

    root = tmp_path / "repo"
    shutil.copytree(onnx_repo / "models", root / "models")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    result = run_cli("apply", cwd=root, env={"MODELOPS_CACHE": str(tmp_path / "cache"), "MLFLOW_TRACKING_URI": "",
                                             "MODELOPS_TRACKING_URI": ""})
    assert result.code == 0, result.err
    uri = f"sqlite:///{root / '.modelops' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/iris-onnx@production")
    assert model.metadata.flavors["python_function"]["loader_module"] == "mlflow.onnx"
    predicted = model.predict(pd.DataFrame(ROWS, columns=NAMES))
    labels, _ = _in_process(onnx_repo / "models/iris-onnx/artifacts/1.0.0/model.onnx", ROWS)
    assert list(predicted.columns) == ["label"] and predicted["label"].tolist() == labels


@pytest.fixture(scope="module")
def servers(onnx_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`modelops serve` of each version (one layout each), for the whole module."""
    started = Servers(tmp_path_factory.mktemp("onnx-serve"))
    folder = str(onnx_repo / "models" / "iris-onnx")
    yield {n: started.start(folder, "--version", n) for n in ("1.0.0", "1.1.0")}
    started.stop_all()


@pytest.mark.parametrize("number", ["1.0.0", "1.1.0"])
def test_the_three_protocols_agree_with_onnxruntime(onnx_repo: Path, servers: dict, number: str) -> None:
    labels, _ = _in_process(onnx_repo / "models/iris-onnx/artifacts" / number / "model.onnx", ROWS)
    client = servers[number]
    mlflow_answer = client.post("/invocations", json={"dataframe_split": {"columns": NAMES, "data": ROWS}})
    assert mlflow_answer.json() == {"predictions": labels}
    typed = client.post("/predict", json={"inputs": [dict(zip(NAMES, r, strict=True)) for r in ROWS]})
    assert typed.json() == {"outputs": [{"species": v} for v in labels], "version": number}
    v2 = client.post("/v2/models/iris-onnx/infer", json={"inputs": [
        {"name": n, "shape": [len(ROWS)], "datatype": "FP64", "data": [r[j] for r in ROWS]}
        for j, n in enumerate(NAMES)]})
    assert v2.json()["outputs"] == [{"name": "species", "datatype": "INT64", "shape": [4], "data": labels}]


def test_the_image_builds_and_smokes(onnx_repo: Path, tmp_path: Path, docker_client, base_image: str) -> None:
    env = {"MODELOPS_BASE_IMAGE": base_image, "MODELOPS_IMAGE_REGISTRY": "modelops-tests/onnx",
           "MODELOPS_CACHE": str(tmp_path / "cache")}
    built = run_cli("build", "models/iris-onnx", "--version", "1.0.0", "--format", "json", cwd=onnx_repo, env=env,
                    timeout=900)
    assert built.code == 0, built.err
    (image,) = json.loads(built.out)["images"]
    try:
        found = docker_client.containers.run(image["ref"], ["python", "-c", "import importlib.util as u; print("
                                             "[bool(u.find_spec(m)) for m in ('onnxruntime', 'sklearn', 'mlflow')])"],
                                             network_mode="none", remove=True)
        assert found.decode().strip() == "[True, False, False]"
        smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=onnx_repo, env=env, timeout=300)
        assert smoked.code == 0, smoked.err
        assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"
    finally:
        harness.remove_image(docker_client, image["id"])
