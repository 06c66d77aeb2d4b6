"""The native flavors xgboost, lightgbm and catboost, from artifact to validate, apply (plain MLflow loads the
registered version), serve (three protocols agree with the framework in-process), image build and smoke.

One repository for the module holds the two example models (wine-xgboost, diabetes-lightgbm) and a CatBoost
classifier made here; one image is built per flavor, on first use, for the whole module.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from modelops import flavors
from modelops.artifacts import digest
from modelops.errors import ModelopsError
from modelops.manifest.loading import load as load_manifest
from tests.conftest import ROOT, run_cli
from tests.registry.helpers import score
from tests.runner.conftest import Servers

MB = 1_000_000
IRIS_INPUTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# flavor -> the model folder that serves it in this module's repository
MODELS = {"xgboost": "wine-xgboost", "lightgbm": "diabetes-lightgbm", "catboost": "iris-catboost"}


def make_catboost_model(folder: Path) -> None:
    """A CatBoost classifier (3 classes, string labels) on iris, as one .cbm file, in a model folder."""
    import catboost
    from sklearn.datasets import load_iris

    data = load_iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    model = catboost.CatBoostClassifier(iterations=15, depth=3, thread_count=1, random_seed=0, verbose=False,
                                         allow_writing_files=False)
    model.fit(data.data, names[data.target])
    path = folder / "artifacts" / "1.0.0" / "model.cbm"
    path.parent.mkdir(parents=True)
    model.save_model(str(path))
    rows = [0, 50, 100]
    example = {"inputs": [dict(zip(IRIS_INPUTS, map(float, data.data[i]), strict=True)) for i in rows],
               "outputs": [{"species": str(label)} for label in model.predict(data.data[rows]).ravel()]}
    manifest = {"name": "iris-catboost", "description": "Iris species, by a CatBoost classifier",
                "owners": ["@ml-team"], "flavor": "catboost",
                "signature": {"inputs": [{"name": n, "type": "double"} for n in IRIS_INPUTS],
                              "outputs": [{"name": "species", "type": "string"}]},
                "example": "example.json", "requirements": "requirements.txt",
                "versions": [{"version": "1.0.0", "artifact": {"uri": "artifacts/1.0.0/model.cbm",
                                                                "sha256": digest(path)}}],
                "deployments": {"production": {"version": "1.0.0"}}}
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "example.json").write_text(json.dumps(example))
    (folder / "requirements.txt").write_text(pins("catboost", "numpy", "scipy", "pandas", "six"))


def pins(*packages: str) -> str:
    from importlib.metadata import version

    return "".join(f"{name}=={version(name)}\n" for name in packages)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository with one model per native flavor (cwd and MODELOPS_ROOT set there for the module)."""
    root = tmp_path_factory.mktemp("native") / "repo"
    for name in ("wine-xgboost", "diabetes-lightgbm"):
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    make_catboost_model(root / "models" / "iris-catboost")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    assert run_cli("codeowners", cwd=root).code == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MODELOPS_ROOT", str(root))
        patch.setenv("MODELOPS_CACHE", str(root.parent / "cache"))
        yield root


def example(repo: Path, flavor: str) -> dict:
    return json.loads((repo / "models" / MODELS[flavor] / "example.json").read_text())


def rows_of(repo: Path, flavor: str) -> tuple[list[str], np.ndarray]:
    inputs = example(repo, flavor)["inputs"]
    names = list(inputs[0])
    return names, np.array([[row[n] for n in names] for row in inputs], dtype=np.float64)


def framework_predictions(repo: Path, flavor: str, method: str = "predict") -> np.ndarray:
    """What the framework itself predicts on the example, loaded its own way (the reference)."""
    folder = repo / "models" / MODELS[flavor]
    artifact = folder / load_manifest(folder, repo).manifest.versions[0].artifact.uri
    _, x = rows_of(repo, flavor)
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(str(artifact))
        return model.predict(x) if method == "predict" else model.predict_proba(x)
    if flavor == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=str(artifact)).predict(x)
    import catboost

    model = catboost.CatBoostClassifier()
    model.load_model(str(artifact))
    return model.predict(x).ravel() if method == "predict" else model.predict_proba(x)


@pytest.mark.parametrize("flavor", list(MODELS))
def test_validate_loads_each_in_the_sandbox_and_scores_the_example(repo: Path, flavor: str) -> None:
    result = run_cli("validate", f"models/{MODELS[flavor]}", cwd=repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_flavor_predicts_what_the_framework_predicts(repo: Path, flavor: str) -> None:
    folder = repo / "models" / MODELS[flavor]
    manifest = load_manifest(folder, repo).manifest
    artifact = folder / manifest.versions[0].artifact.uri
    _, x = rows_of(repo, flavor)
    predicted = flavors.load(flavor, artifact, manifest.signature.inputs).predict(x)
    assert np.array_equal(predicted, framework_predictions(repo, flavor))
    module = importlib.import_module(flavors.FLAVORS[flavor])
    if flavor == "lightgbm":
        with pytest.raises(ModelopsError, match="predict_proba needs a classifier"):
            module.load(artifact, manifest.signature.inputs, "predict_proba")
        return
    proba = module.load(artifact, manifest.signature.inputs, "predict_proba")
    probabilities = proba.predict(x)
    assert probabilities.dtype == np.float64 and probabilities.shape == (len(x), 3)
    np.testing.assert_allclose(probabilities, framework_predictions(repo, flavor, "predict_proba"), rtol=1e-6)
    expected_classes = [0, 1, 2] if flavor == "xgboost" else ["setosa", "versicolor", "virginica"]
    assert proba.classes == expected_classes


@pytest.mark.parametrize("flavor", ["xgboost", "catboost"])
def test_an_mlflow_model_directory_loads_like_the_single_file(repo: Path, tmp_path: Path, flavor: str) -> None:
    import mlflow.catboost
    import mlflow.xgboost

    folder = repo / "models" / MODELS[flavor]
    manifest = load_manifest(folder, repo).manifest
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
    _, x = rows_of(repo, flavor)
    predicted = flavors.load(flavor, tmp_path / "model", manifest.signature.inputs).predict(x)
    assert np.array_equal(predicted, framework_predictions(repo, flavor))


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
def applied(repo: Path) -> str:
    """`modelops apply` into the embedded MLflow of the repository; its tracking URI."""
    result = run_cli("apply", cwd=repo, env={"MLFLOW_TRACKING_URI": "", "MODELOPS_TRACKING_URI": ""})
    assert result.code == 0, result.err
    return f"sqlite:///{repo / '.modelops' / 'mlflow.db'}"


@pytest.mark.parametrize("flavor", list(MODELS))
def test_plain_mlflow_loads_the_registered_version_and_scores_the_example(
        repo: Path, applied: str, flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repo / "models" / MODELS[flavor]
    predictions = np.asarray(score(applied, MODELS[flavor], folder, monkeypatch)).ravel()
    expected = framework_predictions(repo, flavor)
    if flavor == "lightgbm":
        np.testing.assert_allclose(predictions, expected)
    else:
        assert list(predictions) == [row[next(iter(row))] for row in example(repo, flavor)["outputs"]]
        assert list(predictions) == list(expected)


@pytest.fixture(scope="module")
def servers(repo: Path) -> Iterator[Callable[[str], httpx.Client]]:
    """serve(flavor): one `modelops serve` of that flavor's model (production) for the module."""
    started = Servers(repo.parent)
    clients: dict[str, httpx.Client] = {}

    def serve(flavor: str) -> httpx.Client:
        if flavor not in clients:
            clients[flavor] = started.start(str(repo / "models" / MODELS[flavor]), "--env", "production")
        return clients[flavor]

    yield serve
    started.stop_all()


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_three_protocols_agree_with_the_framework(repo: Path, servers, flavor: str) -> None:
    client = servers(flavor)
    names, x = rows_of(repo, flavor)
    expected = framework_predictions(repo, flavor).tolist()
    output = next(iter(example(repo, flavor).get("outputs", [{"progression": 0}])[0]))

    invocations = client.post("/invocations", json={"dataframe_split": {"columns": names, "data": x.tolist()}})
    assert invocations.status_code == 200, invocations.text
    typed = client.post("/predict", json={"inputs": example(repo, flavor)["inputs"]})
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
def images(repo: Path, docker_client, base_image: str) -> Callable[[str], dict]:
    """image(flavor): the image of that flavor's model 1.0.0, built once for the module (build --format json)."""
    built: dict[str, dict] = {}

    def image(flavor: str) -> dict:
        if flavor not in built:
            result = run_cli("build", f"models/{MODELS[flavor]}", "--version", "1.0.0", "--format", "json",
                             cwd=repo, env={"MODELOPS_BASE_IMAGE": base_image}, timeout=1800)
            assert result.code == 0, result.err
            (built[flavor],) = json.loads(result.out)["images"]
        return built[flavor]

    return image


@pytest.mark.parametrize("flavor", list(MODELS))
def test_the_image_smokes_and_carries_the_framework_without_mlflow(repo: Path, images, docker_client,
                                                                    flavor: str) -> None:
    image = images(flavor)
    smoked = run_cli("smoke", image["ref"], "--format", "json", cwd=repo, timeout=600)
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


# (flavor, the file given to it, what validate says)
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
def scratch(repo: Path, tmp_path: Path) -> Callable[[str], Path]:
    """scratch(flavor): a copy of that flavor's model in a repository of its own, to break."""

    def copy(flavor: str) -> Path:
        root = tmp_path / "repo"
        shutil.copytree(repo / "models" / MODELS[flavor], root / "models" / MODELS[flavor])
        shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
        assert run_cli("codeowners", cwd=root).code == 0
        return root / "models" / MODELS[flavor]

    return copy


@pytest.mark.parametrize(("flavor", "other", "message"), WRONG_FILES)
def test_a_booster_of_another_framework_is_a_located_error(repo: Path, scratch, flavor: str, other: str,
                                                           message: str) -> None:
    folder = scratch(flavor)
    source = repo / "models" / MODELS[other]
    _point_at(folder, source / load_manifest(source, repo).manifest.versions[0].artifact.uri)
    result = run_cli("validate", f"models/{folder.name}", cwd=folder.parents[1])
    assert result.code == 1
    assert result.err.startswith(f"models/{folder.name}/model.yaml:"), result.err
    first, hint = result.err.splitlines()[:2]
    assert f": versions[0].artifact: version 1.0.0: does not load as {flavor}: " in first and message in first
    assert f"(use flavor: {other}, or give " in first and hint.startswith("  hint: ")
    assert "Traceback" not in result.err


@pytest.mark.parametrize("flavor", list(MODELS))
def test_a_damaged_artifact_is_a_located_error(repo: Path, scratch, tmp_path: Path, flavor: str) -> None:
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


def test_a_signature_that_does_not_fit_the_booster_is_a_located_error(repo: Path, scratch) -> None:
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
def test_new_scaffolds_a_flavor_that_validates_once_its_artifact_is_in(repo: Path, tmp_path: Path,
                                                                       flavor: str) -> None:
    root = tmp_path / "repo"
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
def test_wrapping_a_booster_file_never_loads_it(repo: Path, tmp_path: Path, flavor: str, name: str,
                                                section: dict) -> None:
    from modelops.registry.mlflow_model import model_dir

    folder = repo / "models" / MODELS[flavor]
    loaded = load_manifest(folder, repo)
    untrusted = tmp_path / name
    untrusted.write_bytes(b"not a model: loading it would fail")
    wrapped = model_dir(untrusted, loaded.manifest, loaded.read("requirements"), tmp_path)
    mlmodel = yaml.safe_load((wrapped / "MLmodel").read_text())
    assert mlmodel["flavors"][flavor] == {"data": name, "code": None, **section}
    assert mlmodel["flavors"]["python_function"]["loader_module"] == f"mlflow.{flavor}"
    assert mlmodel["flavors"]["python_function"]["data"] == name
    assert (wrapped / name).read_bytes() == untrusted.read_bytes()
    assert (wrapped / "requirements.txt").read_text() == loaded.read("requirements")


def test_an_image_leaves_out_what_the_framework_never_imports_unless_the_model_pins_it(repo: Path) -> None:
    def uninstalled(model: str) -> list[str]:
        result = run_cli("render", f"models/{model}", "--version", "1.0.0", cwd=repo)
        assert result.code == 0, result.err
        dockerfile = (repo / "build" / "images" / f"{model}-1.0.0" / "Dockerfile").read_text()
        line = next(line for line in dockerfile.splitlines() if "pip uninstall" in line)
        return line.split("--quiet ")[1].rstrip(" \\").split()

    assert uninstalled("wine-xgboost") == ["pip", "setuptools"]
    assert uninstalled("iris-catboost") == ["pip", "setuptools", "matplotlib", "plotly", "graphviz", "contourpy",
                                            "cycler", "fonttools", "kiwisolver", "pillow", "pyparsing"]
    requirements = repo / "models" / "iris-catboost" / "requirements.txt"
    text = requirements.read_text()
    try:
        requirements.write_text(text + pins("pillow"))
        assert "pillow" not in uninstalled("iris-catboost")
    finally:
        requirements.write_text(text)
