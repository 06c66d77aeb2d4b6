"""The native flavors xgboost, lightgbm and catboost, from artifact to validate, apply (plain MLflow loads the
registered version), serve (three protocols agree with the framework in-process), image build and smoke.

The module's repository (conftest `native_repo`) holds one model per flavor; one image is built per flavor, on first
use, for the whole module.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelops import flavors
from modelops.errors import ModelopsError
from modelops.manifest.loading import load as load_manifest
from tests.conftest import run_cli
from tests.flavors.native import IRIS_INPUTS, MB, MODELS, example, framework_predictions, pins, rows_of
from tests.registry.helpers import score
from tests.runner.conftest import Servers


@pytest.mark.parametrize("flavor", list(MODELS))
def test_validate_loads_each_in_the_sandbox_and_scores_the_example(native_repo: Path, flavor: str) -> None:
    result = run_cli("validate", f"models/{MODELS[flavor]}", cwd=native_repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_flavor_predicts_what_the_framework_predicts(native_repo: Path, flavor: str) -> None:
    folder = native_repo / "models" / MODELS[flavor]
    manifest = load_manifest(folder, native_repo).manifest
    artifact = folder / manifest.versions[0].artifact.uri
    _, x = rows_of(native_repo, flavor)
    predicted = flavors.load(flavor, artifact, manifest.signature.inputs).predict(x)
    assert np.array_equal(predicted, framework_predictions(native_repo, flavor))
    module = importlib.import_module(flavors.FLAVORS[flavor])
    if flavor == "lightgbm":
        with pytest.raises(ModelopsError, match="predict_proba needs a classifier"):
            module.load(artifact, manifest.signature.inputs, "predict_proba")
        return
    proba = module.load(artifact, manifest.signature.inputs, "predict_proba")
    probabilities = proba.predict(x)
    assert probabilities.dtype == np.float64 and probabilities.shape == (len(x), 3)
    np.testing.assert_allclose(probabilities, framework_predictions(native_repo, flavor, "predict_proba"), rtol=1e-6)
    expected_classes = [0, 1, 2] if flavor == "xgboost" else ["setosa", "versicolor", "virginica"]
    assert proba.classes == expected_classes


@pytest.mark.parametrize("flavor", ["xgboost", "catboost"])
def test_an_mlflow_model_directory_loads_like_the_single_file(native_repo: Path, tmp_path: Path, flavor: str) -> None:
    import mlflow.catboost
    import mlflow.xgboost

    folder = native_repo / "models" / MODELS[flavor]
    manifest = load_manifest(folder, native_repo).manifest
    artifact = folder / manifest.versions[0].artifact.uri
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(str(artifact))
        mlflow.xgboost.save_model(model, str(tmp_path / "model"))
    else:
        import catboost

        model = catboost.CatBoostClassifier()
        model.load_model(str(artifact))
        mlflow.catboost.save_model(model, str(tmp_path / "model"))
    _, x = rows_of(native_repo, flavor)
    predicted = flavors.load(flavor, tmp_path / "model", manifest.signature.inputs).predict(x)
    assert np.array_equal(predicted, framework_predictions(native_repo, flavor))


def test_a_lightgbm_mlflow_directory_of_a_scikit_learn_classifier_keeps_its_classes(tmp_path: Path) -> None:
    import lightgbm
    import mlflow.lightgbm
    from sklearn.datasets import load_iris

    from modelops.flavors import lightgbm as flavor

    x, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x, labels)
    mlflow.lightgbm.save_model(model, str(tmp_path / "model"), serialization_format="cloudpickle")
    predictor = flavor.load(tmp_path / "model", IRIS_INPUTS, "predict_proba")
    assert predictor.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(predictor.predict(x[:5]), model.predict_proba(x[:5]))
    assert list(flavor.load(tmp_path / "model", IRIS_INPUTS).predict(x[:5])) == list(model.predict(x[:5]))


@pytest.fixture(scope="module")
def applied(native_repo: Path) -> str:
    """`modelops apply` into the embedded MLflow of the repository; its tracking URI."""
    result = run_cli("apply", cwd=native_repo, env={"MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""})
    assert result.code == 0, result.err
    return f"sqlite:///{native_repo / '.modelops' / 'mlflow.db'}"


@pytest.mark.parametrize("flavor", list(MODELS))
def test_plain_mlflow_loads_the_registered_version_and_scores_the_example(
        native_repo: Path, applied: str, flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = native_repo / "models" / MODELS[flavor]
    predictions = np.asarray(score(applied, MODELS[flavor], folder, monkeypatch)).ravel()
    expected = framework_predictions(native_repo, flavor)
    if flavor == "lightgbm":
        np.testing.assert_allclose(predictions, expected)
    else:
        assert list(predictions) == [row[next(iter(row))] for row in example(native_repo, flavor)["outputs"]]
        assert list(predictions) == list(expected)


@pytest.fixture(scope="module")
def servers(native_repo: Path) -> Iterator[Callable[[str], httpx.Client]]:
    """serve(flavor): one `modelops serve` of that flavor's model (production) for the module."""
    started = Servers(native_repo.parent)
    clients: dict[str, httpx.Client] = {}

    def serve(flavor: str) -> httpx.Client:
        if flavor not in clients:
            clients[flavor] = started.start(str(native_repo / "models" / MODELS[flavor]), "--env", "production")
        return clients[flavor]

    yield serve
    started.stop_all()


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_three_protocols_agree_with_the_framework(native_repo: Path, servers, flavor: str) -> None:
    client = servers(flavor)
    names, x = rows_of(native_repo, flavor)
    expected = framework_predictions(native_repo, flavor).tolist()
    output = next(iter(example(native_repo, flavor).get("outputs", [{"progression": 0}])[0]))

    invocations = client.post("/invocations", json={"dataframe_split": {"columns": names, "data": x.tolist()}})
    assert invocations.status_code == 200, invocations.text
    typed = client.post("/predict", json={"inputs": example(native_repo, flavor)["inputs"]})
    assert typed.status_code == 200, typed.text
    v2 = client.post(f"/v2/models/{MODELS[flavor]}/infer", json={"inputs": [
        {"name": n, "datatype": "FP64", "shape": [len(x)], "data": x[:, j].tolist()} for j, n in enumerate(names)]})
    assert v2.status_code == 200, v2.text
    served = {"invocations": invocations.json()["predictions"],
              "predict": [row[output] for row in typed.json()["outputs"]],
              "v2": v2.json()["outputs"][0]["data"]}
    for protocol, values in served.items():
        if flavor == "lightgbm":
            np.testing.assert_allclose(values, expected, err_msg=protocol)
        else:
            assert values == expected, protocol


@pytest.fixture(scope="module")
def images(native_repo: Path, docker_client, base_image: str) -> Callable[[str], dict]:
    """image(flavor): the image of that flavor's model 1.0.0, built once for the module (build --format json)."""
    built: dict[str, dict] = {}

    def image(flavor: str) -> dict:
        if flavor not in built:
            result = run_cli("build", f"models/{MODELS[flavor]}", "--version", "1.0.0", "--format", "json",
                             cwd=native_repo, env={"MODELOPS_BASE_IMAGE": base_image}, timeout=1800)
            assert result.code == 0, result.err
            (built[flavor],) = json.loads(result.out)["images"]
        return built[flavor]

    return image


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_image_smokes_and_carries_the_framework_without_mlflow(native_repo: Path, images, docker_client,
                                                                    flavor: str) -> None:
    image = images(flavor)
    smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=native_repo, timeout=600)
    assert smoked.code == 0, smoked.err
    assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"
    probe = ("import importlib.util as u; print(*[bool(u.find_spec(m)) for m in "
             f"('{flavor}', 'mlflow', 'pandas', 'sklearn', 'matplotlib', 'plotly')])")
    found = docker_client.containers.run(image["ref"], ["python", "-c", probe], network_mode="none", remove=True)
    # catboost's own compiled module imports pandas: it is a dependency of catboost, not of the runner; its
    # plotting packages are left out (UNUSED_DEPENDENCIES)
    assert found.decode().split() == ["True", "False", str(flavor == "catboost"), "False", "False", "False"]
    # xgboost and lightgbm need SciPy (about 100 MB); catboost is 256 MB by itself
    limit = {"xgboost": 350, "lightgbm": 350, "catboost": 650}[flavor]
    assert image["size"] <= limit * MB, f"the {flavor} image is {image['size'] / MB:.0f} MB"


def test_an_image_leaves_out_what_the_framework_never_imports_unless_the_model_pins_it(native_repo: Path) -> None:
    def uninstalled(model: str) -> list[str]:
        result = run_cli("render", f"models/{model}", "--version", "1.0.0", cwd=native_repo)
        assert result.code == 0, result.err
        dockerfile = (native_repo / "build" / "images" / f"{model}-1.0.0" / "Dockerfile").read_text()
        line = next(line for line in dockerfile.splitlines() if "pip uninstall" in line)
        return line.split("--quiet ")[1].rstrip(" \\").split()

    assert uninstalled("wine-xgboost") == ["pip", "setuptools"]
    assert uninstalled("iris-catboost") == ["pip", "setuptools", "matplotlib", "plotly", "graphviz", "contourpy",
                                            "cycler", "fonttools", "kiwisolver", "pillow", "pyparsing"]
    requirements = native_repo / "models" / "iris-catboost" / "requirements.txt"
    text = requirements.read_text()
    try:
        requirements.write_text(text + pins("pillow"))
        assert "pillow" not in uninstalled("iris-catboost")
    finally:
        requirements.write_text(text)
