"""Regenerate the example models under models/ (deterministic for a given set of installed packages).

iris:     three classifiers on scikit-learn's iris data, saved as MLflow model directories;
          production serves 1.0.0 with a 10 % canary of 1.1.0 and 1.2.0 in shadow.
diabetes: a RandomForestRegressor (100 trees) on scikit-learn's diabetes data, as one .skops file:
          the model the speed benchmarks use.
iris-proba: iris species probabilities (method: predict_proba, string class labels): a logistic regression
          as one .skops file, and a random forest as an MLflow model directory in shadow.
wine-xgboost:      an XGBoost classifier on scikit-learn's wine data, as one .ubj booster file.
diabetes-lightgbm: a LightGBM regressor on the diabetes data, as one model text file.
diabetes-compiled: the same RandomForest, served compiled to ONNX (a float32 graph, run by ONNX Runtime).

Run: .venv/bin/python scripts/make_example_models.py  (then `modelops validate` checks the result)
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np
import yaml
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from modelops.artifacts import digest

MODELS = Path(__file__).resolve().parent.parent / "models"
IRIS_INPUTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def pins(*packages: str) -> str:
    return "".join(f"{name}=={version(name)}\n" for name in packages)


def save_mlflow_dir(model, path: Path, inputs: list[str], output: tuple[str, str] | list[tuple[str, str]],
                    predict_fn: str = "predict") -> None:
    """mlflow.sklearn.save_model, with the MLmodel's time stamp and id fixed so bytes repeat; `output` is
    one (name, type) column or a list of them; `predict_fn` is what MLflow's pyfunc predict answers."""
    import mlflow.sklearn
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = [output] if isinstance(output, tuple) else output
    signature = ModelSignature(Schema([ColSpec("double", n) for n in inputs]),
                               Schema([ColSpec(kind, name) for name, kind in outputs]))
    shutil.rmtree(path, ignore_errors=True)
    mlflow.sklearn.save_model(model, str(path), signature=signature, serialization_format="pickle",
                              pip_requirements=pins("scikit-learn", "numpy", "scipy").split(),
                              pyfunc_predict_fn=predict_fn)
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["utc_time_created"] = "2024-01-01 00:00:00.000000"
    mlmodel["model_uuid"] = "00000000000000000000000000000000"
    mlmodel.pop("model_id", None)
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True))


def save_skops(model, path: Path) -> None:
    """skops.io.dumps, made repeatable: object ids (memory addresses) renumbered, zip times fixed."""
    import skops.io

    src = zipfile.ZipFile(io.BytesIO(skops.io.dumps(model)))
    schema_text = src.read("schema.json").decode()
    ids: dict[str, str] = {}
    for found in re.findall(r'"__id__": (\d+)', schema_text):
        ids.setdefault(found, str(len(ids) + 1))
    renumber = re.compile(r'("__id__": |"file": ")(\d+)')
    schema_text = renumber.sub(lambda m: m.group(1) + ids[m.group(2)], schema_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        targets = {name: f"{ids[name[:-4]]}.npy" if name[:-4] in ids else name for name in src.namelist()}
        for name, target in sorted(targets.items(), key=lambda item: item[1]):
            data = schema_text.encode() if name == "schema.json" else src.read(name)
            dst.writestr(zipfile.ZipInfo(target, ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)


def manifest_text(header: str, head: str, inputs: list[str], output: tuple[str, str], versions: str,
                  deployments: str, flavor: str = "sklearn") -> str:
    """A model.yaml: `head` holds name, description and owners; inputs are doubles; one output column."""
    columns = "".join(f"    - {{name: {n}, type: double}}\n" for n in inputs)
    return (f"{header}\n{head}flavor: {flavor}\nsignature:\n  inputs:\n{columns}  outputs:\n"
            f"    - {{name: {output[0]}, type: {output[1]}}}\nexample: example.json\nrequirements: requirements.txt\n"
            f"versions:\n{versions}deployments:\n{deployments}")


def write_model(name: str, manifest: str, example: dict, requirements: str, readme: str) -> None:
    folder = MODELS / name
    (folder / "model.yaml").write_text(manifest)
    (folder / "example.json").write_text(json.dumps(example, indent=2) + "\n")
    (folder / "requirements.txt").write_text(requirements)
    (folder / "README.md").write_text(readme)


def iris() -> None:
    data = load_iris()
    x, y = data.data, data.target
    versions = {
        "1.0.0": LogisticRegression(max_iter=1000),
        "1.1.0": RandomForestClassifier(n_estimators=50, max_depth=4, random_state=0),
        "1.2.0": GradientBoostingClassifier(n_estimators=30, random_state=0),
    }
    folder = MODELS / "iris"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    agreed = np.ones(len(y), dtype=bool)
    digests = {}
    for number, model in versions.items():
        model.fit(x, y)
        agreed &= model.predict(x) == y
        path = folder / "artifacts" / number
        save_mlflow_dir(model, path, IRIS_INPUTS, ("species", "long"))
        digests[number] = digest(path)
    rows = [int(np.flatnonzero(agreed & (y == k))[0]) for k in range(3)]
    example = {"inputs": [dict(zip(IRIS_INPUTS, map(float, x[i]), strict=True)) for i in rows],
               "outputs": [{"species": int(y[i])} for i in rows]}
    entries = "".join(f"  - version: {n}\n    description: {type(m).__name__}\n"
                      f"    artifact:\n      uri: artifacts/{n}/\n      sha256: {digests[n]}\n"
                      for n, m in versions.items())
    manifest = manifest_text(
        "# Iris species classifier: the example of a model with several versions, a canary and a shadow.",
        "name: iris\ndescription: Iris species classifier (0 setosa, 1 versicolor, 2 virginica)\n"
        'owners: ["@ml-team"]\n', IRIS_INPUTS, ("species", "long"), entries,
        "  staging:\n    version: 1.2.0\n  production:\n    version: 1.0.0\n"
        "    canary: {version: 1.1.0, weight: 10}\n    shadow: [1.2.0]\n")
    readme = ("# iris\n\nClassifies iris flowers into 0 setosa, 1 versicolor, 2 virginica from four measurements"
              " in cm.\n\n- 1.0.0: logistic regression\n- 1.1.0: random forest (50 trees)\n"
              "- 1.2.0: gradient boosting (30 trees)\n\nTrained on scikit-learn's bundled iris data by "
              "`scripts/make_example_models.py`.\n")
    write_model("iris", manifest, example, pins("scikit-learn", "numpy", "scipy"), readme)


def diabetes() -> None:
    data = load_diabetes()
    names = list(data.feature_names)
    model = RandomForestRegressor(n_estimators=100, random_state=0).fit(data.data, data.target)
    folder = MODELS / "diabetes"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    path = folder / "artifacts" / "1.0.0" / "model.skops"
    save_skops(model, path)
    example = {"inputs": [dict(zip(names, map(float, data.data[i]), strict=True)) for i in range(2)]}
    entry = (f"  - version: 1.0.0\n    description: RandomForestRegressor, 100 trees\n    artifact:\n"
             f"      uri: artifacts/1.0.0/model.skops\n      sha256: {digest(path)}\n")
    manifest = manifest_text(
        "# Diabetes progression regressor: a RandomForest (100 trees) in one .skops file.",
        "name: diabetes\ndescription: One-year disease progression from ten baseline measurements (scaled)\n"
        'owners: ["@ml-team", "@health/analytics"]\n', names, ("progression", "double"), entry,
        "  staging: {version: 1.0.0}\n  production: {version: 1.0.0}\n")
    readme = ("# diabetes\n\nPredicts a quantitative measure of diabetes progression one year after baseline"
              " from age, sex, BMI, blood pressure and six blood serum measurements (each mean-centred and"
              " scaled).\n\nA RandomForestRegressor with 100 trees, trained on scikit-learn's bundled diabetes"
              " data by `scripts/make_example_models.py`; stored with skops (no pickle).\n")
    write_model("diabetes", manifest, example, pins("scikit-learn", "numpy", "scipy", "skops"), readme)


def iris_proba() -> None:
    """A classifier serving probabilities: one double output per species, named by its (string) label."""
    data = load_iris()
    x, y = data.data, data.target_names[data.target]  # string classes: setosa, versicolor, virginica
    folder = MODELS / "iris-proba"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    logistic = LogisticRegression(max_iter=1000).fit(x, y)
    skops_path = folder / "artifacts" / "1.0.0" / "model.skops"
    save_skops(logistic, skops_path)
    forest = RandomForestClassifier(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    outputs = [(f"p_{label}", "double") for label in forest.classes_]
    save_mlflow_dir(forest, folder / "artifacts" / "1.1.0", IRIS_INPUTS, outputs, predict_fn="predict_proba")
    rows = [int(np.flatnonzero(data.target == k)[0]) for k in range(3)]
    example = {"inputs": [dict(zip(IRIS_INPUTS, map(float, x[i]), strict=True)) for i in rows]}
    columns = "".join(f"    - {{name: {n}, type: double}}\n" for n in IRIS_INPUTS)
    labelled = "".join(f"    - {{name: p_{c}, type: double, label: {c}}}\n" for c in logistic.classes_)
    manifest = (
        "# Iris species probabilities: method predict_proba, one double output per class, named by its label.\n"
        "name: iris-proba\ndescription: Probability of each iris species from four measurements in cm\n"
        'owners: ["@ml-team"]\nflavor: sklearn\nmethod: predict_proba\n'
        f"signature:\n  inputs:\n{columns}  outputs:\n{labelled}example: example.json\n"
        "requirements: requirements.txt\nversions:\n"
        "  - version: 1.0.0\n    description: LogisticRegression\n    artifact:\n"
        f"      uri: artifacts/1.0.0/model.skops\n      sha256: {digest(skops_path)}\n"
        "  - version: 1.1.0\n    description: RandomForestClassifier, 30 trees\n    artifact:\n"
        f"      uri: artifacts/1.1.0/\n      sha256: {digest(folder / 'artifacts' / '1.1.0')}\n"
        "deployments:\n  staging: {version: 1.1.0}\n  production:\n    version: 1.0.0\n    shadow: [1.1.0]\n")
    readme = ("# iris-proba\n\nThe probability of each iris species (setosa, versicolor, virginica) from four"
              " measurements in cm: `method: predict_proba`, one double output column per class, each naming"
              " its class label.\n\n- 1.0.0: logistic regression, one .skops file\n- 1.1.0: random forest"
              " (30 trees), an MLflow model directory saved with `pyfunc_predict_fn=\"predict_proba\"`; in"
              " shadow in production\n\nTrained on scikit-learn's bundled iris data by"
              " `scripts/make_example_models.py`.\n")
    write_model("iris-proba", manifest, example, pins("scikit-learn", "numpy", "scipy", "skops"), readme)


def single_file_version(name: str, path: Path, description: str) -> str:
    """The versions entry 1.0.0 of model `name` whose artifact is the single file `path`."""
    return (f"  - version: 1.0.0\n    description: {description}\n    artifact:\n"
            f"      uri: {path.relative_to(MODELS / name)}\n      sha256: {digest(path)}\n")


def wine_xgboost() -> None:
    """An XGBoost classifier (3 classes) on scikit-learn's wine data, as one .ubj booster file."""
    import xgboost

    data = load_wine()
    names = [re.sub(r"[^A-Za-z0-9_]", "_", n) for n in data.feature_names]
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0)
    model.fit(data.data, data.target)
    folder = MODELS / "wine-xgboost"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    path = folder / "artifacts" / "1.0.0" / "model.ubj"
    path.parent.mkdir(parents=True)
    model.get_booster().save_model(str(path))
    rows = [int(np.flatnonzero(data.target == k)[0]) for k in range(3)]
    example = {"inputs": [dict(zip(names, map(float, data.data[i]), strict=True)) for i in rows],
               "outputs": [{"cultivar": int(c)} for c in model.predict(data.data[rows])]}
    manifest = manifest_text(
        "# Wine cultivar classifier: an XGBoost booster (flavor xgboost) in one .ubj file.",
        "name: wine-xgboost\ndescription: Wine cultivar (0, 1 or 2) from thirteen chemical measurements\n"
        'owners: ["@ml-team"]\n', names, ("cultivar", "long"),
        single_file_version("wine-xgboost", path, "XGBClassifier, 20 trees per class, depth 3"),
        "  staging: {version: 1.0.0}\n  production: {version: 1.0.0}\n", flavor="xgboost")
    readme = ("# wine-xgboost\n\nTells which of three cultivars (0, 1, 2) a wine comes from, from thirteen "
              "chemical measurements.\n\nAn XGBoost classifier (20 boosting rounds, depth 3) trained on "
              "scikit-learn's bundled wine data by `scripts/make_example_models.py`, saved as one booster file "
              "(`model.ubj`). Its image installs xgboost-cpu, NumPy and SciPy: no scikit-learn, pandas or MLflow.\n")
    write_model("wine-xgboost", manifest, example, pins("xgboost-cpu", "numpy", "scipy"), readme)


def diabetes_lightgbm() -> None:
    """A LightGBM regressor on scikit-learn's diabetes data, as one model text file."""
    import lightgbm

    data = load_diabetes()
    names = list(data.feature_names)
    params = {"objective": "regression", "num_leaves": 8, "learning_rate": 0.1, "num_threads": 1, "seed": 0,
              "deterministic": True, "force_row_wise": True, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(data.data, data.target), num_boost_round=40)
    folder = MODELS / "diabetes-lightgbm"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    path = folder / "artifacts" / "1.0.0" / "model.txt"
    path.parent.mkdir(parents=True)
    booster.save_model(str(path))
    example = {"inputs": [dict(zip(names, map(float, data.data[i]), strict=True)) for i in range(2)]}
    manifest = manifest_text(
        "# Diabetes progression regressor: a LightGBM model (flavor lightgbm) in one text file.",
        "name: diabetes-lightgbm\ndescription: One-year disease progression from ten baseline measurements "
        '(scaled)\nowners: ["@ml-team", "@health/analytics"]\n', names, ("progression", "double"),
        single_file_version("diabetes-lightgbm", path, "LightGBM regressor, 40 trees of 8 leaves"),
        "  staging: {version: 1.0.0}\n  production: {version: 1.0.0}\n", flavor="lightgbm")
    readme = ("# diabetes-lightgbm\n\nPredicts a quantitative measure of diabetes progression one year after "
              "baseline from the same ten scaled measurements as `diabetes`.\n\nA LightGBM regressor (40 trees "
              "of 8 leaves) trained on scikit-learn's bundled diabetes data by `scripts/make_example_models.py`, "
              "saved as one model text file (`model.txt`). Its image installs lightgbm, NumPy and SciPy: no "
              "scikit-learn, pandas or MLflow.\n")
    write_model("diabetes-lightgbm", manifest, example, pins("lightgbm", "numpy", "scipy", "narwhals"), readme)


def diabetes_compiled() -> None:
    """The diabetes RandomForest (the same .skops bytes) served compiled: float32 thresholds decide as
    scikit-learn's trees do (they split float32 inputs), the float32 sums of 100 leaves differ by ~1e-4."""
    data = load_diabetes()
    names = list(data.feature_names)
    model = RandomForestRegressor(n_estimators=100, random_state=0).fit(data.data, data.target)
    folder = MODELS / "diabetes-compiled"
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    path = folder / "artifacts" / "1.0.0" / "model.skops"
    save_skops(model, path)
    example = {"inputs": [dict(zip(names, map(float, data.data[i]), strict=True)) for i in range(2)]}
    entry = (f"  - version: 1.0.0\n    description: RandomForestRegressor, 100 trees, compiled to ONNX\n"
             f"    artifact:\n      uri: artifacts/1.0.0/model.skops\n      sha256: {digest(path)}\n")
    manifest = manifest_text(
        "# The diabetes RandomForest (100 trees), served compiled to ONNX: the image holds ONNX Runtime only.",
        "name: diabetes-compiled\ndescription: One-year disease progression from ten baseline measurements "
        '(scaled), compiled to ONNX\nowners: ["@ml-team", "@health/analytics"]\n', names,
        ("progression", "double"), entry, "  staging: {version: 1.0.0}\n  production: {version: 1.0.0}\n")
    manifest += ("# Checked on the example and 1,000 rows drawn within its ranges before anything ships;\n"
                 "# float32 sums of 100 leaves: a deviation of about 1e-4 on values of 25 to 350.\n"
                 "compile:\n  to: onnx\n  precision: float\n  tolerance: {absolute: 0.001, relative: 0.00001}\n")
    readme = ("# diabetes-compiled\n\nThe `diabetes` RandomForestRegressor (100 trees), served compiled to ONNX: "
              "`modelops validate` and the image build convert it with skl2onnx and verify it against the "
              "scikit-learn model; the image runs it with ONNX Runtime and holds neither scikit-learn nor SciPy."
              "\n\nTrained by `scripts/make_example_models.py`.\n")
    write_model("diabetes-compiled", manifest, example, pins("scikit-learn", "numpy", "scipy", "skops"), readme)


EXAMPLES = {"iris": iris, "diabetes": diabetes, "iris-proba": iris_proba, "wine-xgboost": wine_xgboost,
            "diabetes-lightgbm": diabetes_lightgbm, "diabetes-compiled": diabetes_compiled}

if __name__ == "__main__":
    for folder, make in EXAMPLES.items():
        (MODELS / folder).mkdir(parents=True, exist_ok=True)
        make()
    print(f"wrote {', '.join(str(MODELS / folder) for folder in EXAMPLES)}")
