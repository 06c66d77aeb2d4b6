"""The compiled fast path: validate prints the deviation; rendering is verified and repeatable; the image
holds ONNX Runtime and not scikit-learn or SciPy, its labels and the registry carry both digests, smoke
passes; a model that disagrees beyond its tolerance or does not convert is a located error."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_diabetes
from sklearn.kernel_ridge import KernelRidge

from modelops.artifacts import digest
from modelops.errors import ModelopsError
from tests.conftest import ROOT, run_cli
from tests.images import harness

MB = 1_000_000
MODEL = "models/diabetes-compiled"


@pytest.fixture(scope="module")
def compiled_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compiled") / "repo"
    shutil.copytree(ROOT / MODEL, root / MODEL)
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _copy(compiled_repo: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(compiled_repo, root)
    return root


def _edit(root: Path, old: str, new: str) -> None:
    manifest = root / MODEL / "model.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))


def test_validate_compiles_verifies_and_prints_the_deviation(compiled_repo: Path) -> None:
    result = run_cli("validate", MODEL, cwd=compiled_repo)
    assert (result.code, result.out.strip()) == (0, "1 model(s) valid"), result.err
    found = re.search(r"version 1\.0\.0 compiled to ONNX: agrees on 1002 rows, maximum deviation (\S+) absolute",
                      result.err)
    assert found, result.err
    assert 0 < float(found.group(1)) < 0.001  # float32 sums of 100 leaves, within the declared tolerance


def test_a_reference_file_gives_the_rows_to_check_on(compiled_repo: Path, tmp_path: Path) -> None:
    root = _copy(compiled_repo, tmp_path)
    data = load_diabetes(as_frame=True).data
    data.iloc[100:150].to_csv(root / MODEL / "reference.csv", index=False)
    _edit(root, "  precision: float\n", "  precision: float\n  reference: reference.csv\n")
    result = run_cli("validate", MODEL, cwd=root)
    assert result.code == 0, result.err
    assert "version 1.0.0 compiled to ONNX: agrees on 1050 rows" in result.err
    (root / MODEL / "reference.csv").write_text("age,sex\n0.1,0.2\n")
    missing = run_cli("validate", MODEL, cwd=root)
    assert missing.code == 1 and "Traceback" not in missing.err
    assert re.search(r"model\.yaml:\d+: compile\.reference: reference\.csv: the header lacks bmi, bp, s1", missing.err)


def test_the_context_serves_the_graph_and_a_second_render_changes_nothing(compiled_repo: Path,
                                                                          tmp_path: Path) -> None:
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        result = run_cli("render", MODEL, "--version", "1.0.0", "--out", str(out), cwd=compiled_repo)
        assert result.code == 0, result.err
    graphs = [(out / "model" / "artifacts" / "1.0.0" / "model.onnx").read_bytes() for out in outs]
    assert graphs[0] == graphs[1]
    for name in ("Dockerfile", "requirements/model.txt", "model/model.yaml"):
        assert (outs[0] / name).read_text() == (outs[1] / name).read_text()
    assert (outs[0] / "requirements" / "model.txt").read_text() == f"onnxruntime=={version('onnxruntime')}\n"
    served = yaml.safe_load((outs[0] / "model" / "model.yaml").read_text())
    assert served["flavor"] == "onnx" and "compile" not in served
    assert served["versions"][0]["artifact"] == {"uri": "artifacts/1.0.0/model.onnx",
                                                 "sha256": hashlib.sha256(graphs[0]).hexdigest()}
    assert not list((outs[0] / "model" / "artifacts").rglob("*.skops"))  # the image holds the graph only
    dockerfile = (outs[0] / "Dockerfile").read_text()
    assert f'io.modelops.model.compiled.sha256="{hashlib.sha256(graphs[0]).hexdigest()}"' in dockerfile
    artifact = yaml.safe_load((compiled_repo / MODEL / "model.yaml").read_text())["versions"][0]["artifact"]
    assert f'io.modelops.model.artifact.sha256="{artifact["sha256"]}"' in dockerfile


def test_a_graph_beyond_its_tolerance_is_a_located_error_and_ships_nothing(compiled_repo: Path,
                                                                           tmp_path: Path) -> None:
    root = _copy(compiled_repo, tmp_path)
    _edit(root, "tolerance: {absolute: 0.001, relative: 0.00001}", "tolerance: {absolute: 0, relative: 0}")
    result = run_cli("validate", MODEL, cwd=root)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    assert re.search(r"models/diabetes-compiled/model\.yaml:\d+: compile\.tolerance: version 1\.0\.0: the compiled "
                     r"model disagrees beyond its tolerance \(absolute 0, relative 0\) on \d+ of 1002 rows: maximum "
                     r"deviation \S+ absolute", result.err), result.err
    assert "hint: if that deviation is acceptable, declare it (e.g. tolerance: {absolute:" in result.err
    out = tmp_path / "context"
    rendered = run_cli("render", MODEL, "--version", "1.0.0", "--out", str(out), cwd=root)
    assert rendered.code == 1 and "compile.tolerance" in rendered.err and "Traceback" not in rendered.err
    assert not out.exists()

    _edit(root, "  precision: float\n", "")  # the default, double: ONNX Runtime's tree ensembles are float32
    double = run_cli("validate", MODEL, cwd=root)
    assert double.code == 1 and "compile.precision: version 1.0.0: ONNX Runtime cannot run the double-precision" \
        in double.err
    assert "hint: tree ensembles run as float32 graphs: set compile.precision: float" in double.err


def _frameworks() -> dict:
    import lightgbm
    import xgboost
    from sklearn.datasets import load_iris

    x, y = load_diabetes(return_X_y=True)
    flowers, species = load_iris(return_X_y=True)
    return {
        "xgboost regressor": (xgboost.XGBRegressor(n_estimators=20, max_depth=4).fit(x, y), x),
        "xgboost booster": (xgboost.train({"max_depth": 4}, xgboost.DMatrix(x, y), 20), x),
        "xgboost classifier": (xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(flowers, species), flowers),
        "lightgbm regressor": (lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(x, y), x),
        "lightgbm booster": (lightgbm.train({"verbose": -1}, lightgbm.Dataset(x, y), 20), x),
        "lightgbm classifier": (lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(flowers, species), flowers),
    }


@pytest.mark.parametrize("kind", ["xgboost regressor", "xgboost booster", "xgboost classifier",
                                  "lightgbm regressor", "lightgbm booster", "lightgbm classifier"])
def test_xgboost_and_lightgbm_models_convert_repeatably_and_agree(kind: str, tmp_path: Path) -> None:
    import numpy as np
    import xgboost

    from modelops.flavors import compiled, onnx
    from modelops.manifest.model import Column

    model, data = _frameworks()[kind]
    graph = compiled.convert(model, data.shape[1], "float")
    assert compiled.convert(model, data.shape[1], "float") == graph
    path = tmp_path / "model.onnx"
    path.write_bytes(graph)
    served = onnx.load(path, [Column(name=f"c{j}", type="double") for j in range(data.shape[1])])
    expected = model.predict(xgboost.DMatrix(data) if isinstance(model, xgboost.Booster) else data)
    found = compiled.agreement(np.asarray(expected), served.predict(data), 1e-3, 1e-5, compiled.is_classifier(model))
    assert found.labels == kind.endswith("classifier") and found.rows == len(data)
    with pytest.raises(ModelopsError) as raised:
        compiled.convert(model, data.shape[1], "double")
    assert raised.value.problem.field == "compile.precision"


def test_a_model_the_converter_does_not_know_is_a_located_error(compiled_repo: Path, tmp_path: Path) -> None:
    root = _copy(compiled_repo, tmp_path)
    data = load_diabetes()
    artifact = root / MODEL / "artifacts" / "2.0.0" / "model.pkl"
    artifact.parent.mkdir()
    artifact.write_bytes(pickle.dumps(KernelRidge(alpha=0.1).fit(data.data, data.target)))
    _edit(root, "deployments:\n", f"  - version: 2.0.0\n    artifact:\n      uri: artifacts/2.0.0/model.pkl\n"
                                  f"      sha256: {digest(artifact)}\n    compile: {{to: onnx}}\ndeployments:\n")
    result = run_cli("validate", MODEL, cwd=root)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    assert re.search(r"model\.yaml:\d+: versions\[1\]\.compile: version 2\.0\.0: KernelRidge does not convert to "
                     r"ONNX: MissingShapeCalculator", result.err), result.err
    assert "hint: compile a tree ensemble or a linear model, or remove compile" in result.err
    assert "version 1.0.0 compiled to ONNX: agrees on 1002 rows" in result.err  # the other version still checks


def test_an_image_mixing_compiled_and_uncompiled_versions_is_refused(compiled_repo: Path, tmp_path: Path) -> None:
    root = _copy(compiled_repo, tmp_path)
    _edit(root, "deployments:\n  staging: {version: 1.0.0}\n  production: {version: 1.0.0}\n",
          "  - version: 1.1.0\n    artifact:\n      uri: artifacts/1.0.0/model.skops\n"
          f"      sha256: {digest(root / MODEL / 'artifacts/1.0.0/model.skops')}\n    compile: false\n"
          "deployments:\n  staging: {version: 1.0.0}\n  production: {version: 1.0.0, shadow: [1.1.0]}\n")
    out = tmp_path / "context"
    result = run_cli("render", MODEL, "--env", "production", "--out", str(out), cwd=root)
    assert result.code == 1 and "Traceback" not in result.err and not out.exists()
    assert re.search(r"model\.yaml:\d+: deployments\.production: image 1\.0\.0_1\.1\.0 would serve compiled and "
                     r"uncompiled versions together \(1\.0\.0 compiled, 1\.1\.0 as it is\)", result.err), result.err
    assert "hint: compile every version a deployment routes to, or none of them" in result.err


@pytest.fixture(scope="module")
def built(compiled_repo: Path, tmp_path_factory: pytest.TempPathFactory, docker_client, base_image: str
          ) -> Iterator[dict]:
    """`apply --build --push` of the compiled model (embedded MLflow, a docker-registry): its one image."""
    try:
        registry = harness.Registry(tmp_path_factory.mktemp("compiled-registry"))
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    out = compiled_repo / "images.json"
    env = {"MODELOPS_BASE_IMAGE": base_image, "MODELOPS_IMAGE_REGISTRY": f"{registry.address}/models",
           "MODELOPS_CACHE": str(tmp_path_factory.mktemp("cache")), "MLFLOW_TRACKING_URI": "",
           "MODELOPS_TRACKING_URI": ""}
    try:
        done = run_cli("apply", "--build", "--push", "--images-out", str(out), MODEL, cwd=compiled_repo, env=env,
                       timeout=1200)
        assert done.code == 0, done.err
        (image,) = json.loads(out.read_text())["images"]
        yield {**image, "env": env}
        harness.remove_image(docker_client, image["id"])
    finally:
        registry.close()


def test_the_compiled_image_holds_onnx_runtime_and_not_the_framework(built: dict, docker_client) -> None:
    found = docker_client.containers.run(built["ref"], ["python", "-c", "import importlib.util as u; print("
                                         "[bool(u.find_spec(m)) for m in ('onnxruntime', 'sklearn', 'scipy', "
                                         "'xgboost', 'skops', 'mlflow', 'pandas')])"], network_mode="none", remove=True)
    assert found.decode().strip() == "[True, False, False, False, False, False, False]"
    assert built["size"] <= 250 * MB, f"the compiled image is {built['size'] / MB:.0f} MB"


def test_its_labels_and_the_registry_carry_both_digests(built: dict, compiled_repo: Path, docker_client) -> None:
    from mlflow import MlflowClient

    labels = docker_client.api.inspect_image(built["ref"])["Config"]["Labels"]
    artifact = yaml.safe_load((compiled_repo / MODEL / "model.yaml").read_text())["versions"][0]["artifact"]
    assert labels["io.modelops.model.artifact.sha256"] == artifact["sha256"]
    graph = docker_client.containers.run(built["ref"], ["python", "-c", "import hashlib; print(hashlib.sha256("
                                         "open('/model/artifacts/1.0.0/model.onnx', 'rb').read()).hexdigest())"],
                                         network_mode="none", remove=True).decode().strip()
    assert labels["io.modelops.model.compiled.sha256"] == graph == built["compiled_sha256"]
    uri = f"sqlite:///{compiled_repo / '.modelops' / 'mlflow.db'}"
    (registered,) = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(
        "name = 'diabetes-compiled'")
    assert registered.tags["modelops.sha256"] == artifact["sha256"]
    assert registered.tags["modelops.compiled_sha256"] == graph
    assert registered.tags["modelops.image"] == f"{built['ref']}@{built['digest']}"


def test_the_compiled_image_smokes(built: dict, compiled_repo: Path) -> None:
    smoked = run_cli("smoke", built["ref"], "--format", "json", cwd=compiled_repo, env=built["env"], timeout=300)
    assert smoked.code == 0, smoked.err
    assert json.loads(smoked.out)["smoke"][0]["served_by"] == "1.0.0"


def test_a_compiled_booster_serving_probabilities_names_its_classes_in_the_graph(tmp_path: Path) -> None:
    """A raw booster has no classes_: the graph gets the flavor's labels, so that the image (ONNX Runtime
    alone, no onnx package) can check them against the manifest's at start-up."""
    import onnxruntime

    from modelops.runner.loading import resolve

    root = tmp_path / "repo"
    shutil.copytree(ROOT / "models" / "wine-xgboost", root / "models" / "wine-xgboost")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    manifest = root / "models" / "wine-xgboost" / "model.yaml"
    outputs = "".join(f"    - {{name: p_{k}, type: double, label: {k}}}\n" for k in range(3))
    text = manifest.read_text().replace("    - {name: cultivar, type: long}\n", outputs)
    text = text.replace("flavor: xgboost\n", "flavor: xgboost\nmethod: predict_proba\n"
                        "compile: {to: onnx, precision: float, tolerance: {absolute: 0.0001}}\n")
    manifest.write_text(text)
    example = root / "models" / "wine-xgboost" / "example.json"
    example.write_text(json.dumps({"inputs": json.loads(example.read_text())["inputs"]}))
    checked = run_cli("validate", "models/wine-xgboost", cwd=root)
    assert checked.code == 0 and "compiled to ONNX" in checked.err, checked.err
    out = tmp_path / "context"
    result = run_cli("render", "models/wine-xgboost", "--version", "1.0.0", "--out", str(out), cwd=root)
    assert result.code == 0, result.err
    graph = out / "model" / "artifacts" / "1.0.0" / "model.onnx"
    meta = onnxruntime.InferenceSession(str(graph)).get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == [0, 1, 2]
    served = resolve(str(out / "model"), version="1.0.0")  # what the image serves
    predictor = served.loaders["1.0.0"]()
    assert predictor.classes == [0, 1, 2]
