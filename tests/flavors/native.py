"""The models of the native-flavor tests: the two example models (wine-xgboost, diabetes-lightgbm) and a
CatBoost classifier made here, in one repository; and what each framework itself predicts on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from modelops.artifacts import digest
from modelops.manifest.loading import load as load_manifest
from tests.conftest import ROOT, run_cli

MB = 1_000_000
IRIS_INPUTS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# flavor -> the model folder that serves it in the repository of `make_repo`
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



def make_repo(root: Path) -> Path:
    """A repository at `root` with one model per native flavor."""
    for name in ("wine-xgboost", "diabetes-lightgbm"):
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    make_catboost_model(root / "models" / "iris-catboost")
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    assert run_cli("codeowners", cwd=root).code == 0
    return root
