"""Make an MLflow model directory of a verified artifact, so plain MLflow can load the registered version.

An MLflow model directory (it has an `MLmodel`) is used as it is, but for the entry below. A single file is
wrapped without being loaded: it is copied next to an `MLmodel` that names it (the matching MLflow flavor and
its python_function entry point), the manifest's signature and its requirements. A scikit-learn file gets the
sklearn flavor (`skops` or `pickle` serialization; its python_function answers the manifest's `method`); a
booster file the xgboost, lightgbm or catboost flavor, whose model class MLflow instantiates: a classifier's
when the manifest's first output is a label (not a float), so `mlflow.pyfunc` predicts labels as the runner does.
A single `.onnx` file becomes an MLflow onnx model the same way (pyfunc loader `mlflow.onnx`).

Where MLflow's own flavor would not answer what the runner serves (a booster's or a graph's probabilities, a
LightGBM classifier's labels), the python_function entry is modelops' own (`flavors.mlflow_entry`, copied into
the model with the flavor modules it uses), for a single file and for a directory alike: plain MLflow then
predicts through the runner's flavor.
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.flavors import mlflow_entry
from modelops.flavors.sklearn import skops_types
from modelops.manifest.model import Manifest

_FORMATS = {".skops": "skops", ".pkl": "pickle", ".pickle": "pickle"}
# flavor -> the single files it wraps (by suffix)
_SINGLE_FILES = {"sklearn": tuple(_FORMATS), "xgboost": (".ubj", ".json"), "lightgbm": (".txt",), "catboost": (".cbm",)}


def model_dir(artifact: Path, manifest: Manifest, requirements: str, work: Path) -> Path:
    """`artifact` itself when it is an MLflow model directory, else a directory made in `work` (with the
    model's `requirements` text)."""
    if artifact.is_dir():
        if not (artifact / "MLmodel").is_file():
            raise ModelopsError(f"{artifact.name}/ has no MLmodel file",
                                hint="an artifact folder is an MLflow model directory (mlflow.<flavor>.save_model)")
        if not _through_modelops(manifest) and not (manifest.flavor in mlflow_entry.FLAVORS and _has_entry(artifact)):
            return artifact
        return _with_entry(artifact, manifest, work / "model")
    if manifest.flavor == "onnx" and artifact.suffix == ".onnx":
        return _onnx_dir(artifact, manifest, requirements, work / "model")
    suffixes = _SINGLE_FILES.get(manifest.flavor, ())
    if artifact.suffix not in suffixes:
        forms = ", ".join(f"{flavor} {' '.join(ends)}" for flavor, ends in _SINGLE_FILES.items())
        raise ModelopsError(f"cannot make an MLflow model of {artifact.name} (flavor {manifest.flavor})",
                            hint=f"use an MLflow model directory, or a single file of these flavors: {forms}")
    import mlflow.pyfunc

    target = work / "model"
    target.mkdir()
    filename = f"model{artifact.suffix}"
    shutil.copyfile(artifact, target / filename)
    (target / "requirements.txt").write_text(requirements)
    mlmodel = _mlmodel(manifest)
    if manifest.flavor == "sklearn":
        fmt = _FORMATS[artifact.suffix]
        # predict_fn: what plain MLflow's predict answers is the manifest's method (labels, or probabilities)
        mlflow.pyfunc.add_to_model(mlmodel, loader_module="mlflow.sklearn", model_path=filename,
                                   predict_fn=manifest.method)
        mlmodel.add_flavor("sklearn", pickled_model=filename, serialization_format=fmt, code=None,
                           sklearn_version=_pinned(requirements, "scikit-learn"),
                           skops_trusted_types=skops_types(artifact) if fmt == "skops" else None)
    else:
        _python_function(mlmodel, manifest, target, filename, _through_modelops(manifest))
        mlmodel.add_flavor(manifest.flavor, data=filename, code=None,
                           **_BOOSTER_CONFIG[manifest.flavor](artifact, manifest, requirements))
    mlmodel.save(str(target / "MLmodel"))
    return target


def _through_modelops(manifest: Manifest) -> bool:
    """Whether MLflow's own loader of the flavor would answer something else than the runner: probabilities
    of anything but scikit-learn (MLflow's predict_fn is sklearn's alone), labels of a LightGBM booster."""
    if manifest.flavor not in mlflow_entry.FLAVORS:
        return False
    return manifest.method == "predict_proba" or (manifest.flavor == "lightgbm" and _predicts_labels(manifest))


def _python_function(mlmodel, manifest: Manifest, target: Path, data: str | None, entry: bool,
                     env: dict | None = None) -> None:
    """The python_function entry of the model in `target` (`data`: its file, None: the whole directory; `env`:
    the environment files an MLflow directory named): MLflow's own loader of the flavor, or with `entry`
    modelops' entry, its modules copied next to the model."""
    import mlflow.pyfunc

    environments = {"conda_env": (env or {}).get("conda"), "python_env": (env or {}).get("virtualenv")}
    if not entry:
        mlflow.pyfunc.add_to_model(mlmodel, loader_module=f"mlflow.{manifest.flavor}", data=data, **environments)
        return
    code = target / mlflow_entry.CODE
    if code.exists():
        raise ModelopsError(f"the model already has a {mlflow_entry.CODE}/ folder",
                            hint="rename that folder: modelops writes its loader there")
    for name, text in mlflow_entry.files().items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text, encoding="utf-8")
    mlflow.pyfunc.add_to_model(mlmodel, loader_module=mlflow_entry.loader_module(), data=data, code=mlflow_entry.CODE,
                               model_config={"flavor": manifest.flavor, "method": manifest.method,
                                             "inputs": [c.name for c in manifest.signature.inputs]},
                               **environments)


def _with_entry(artifact: Path, manifest: Manifest, target: Path) -> Path:
    """A copy of the MLflow model directory `artifact` whose python_function is modelops' entry and whose
    signature is the manifest's (the columns the entry reads)."""
    from mlflow.models import Model

    shutil.copytree(artifact, target, ignore=shutil.ignore_patterns(mlflow_entry.CODE))  # the entry is written anew
    mlmodel = Model.load(str(target / "MLmodel"))
    previous = mlmodel.flavors.pop("python_function", None) or {}
    mlmodel.signature = _mlmodel(manifest).signature
    _python_function(mlmodel, manifest, target, None, True, previous.get("env") if isinstance(previous, dict) else None)
    mlmodel.save(str(target / "MLmodel"))
    return target


def _has_entry(artifact: Path) -> bool:
    """Whether the MLflow model directory `artifact` already loads through a copy of modelops' entry (a version
    registered by modelops, taken back out of the registry): then the manifest's method, not its own, decides."""
    import yaml

    try:
        spec = yaml.safe_load((artifact / "MLmodel").read_text())
        return mlflow_entry.is_loader(spec["flavors"]["python_function"]["loader_module"])
    except (OSError, yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError):
        return False


def _predicts_labels(manifest: Manifest) -> bool:
    return manifest.signature.outputs[0].type not in ("float", "double")


def _xgboost(artifact: Path, manifest: Manifest, requirements: str) -> dict:
    model_class = "xgboost.sklearn.XGBClassifier" if _predicts_labels(manifest) else "xgboost.core.Booster"
    return {"xgb_version": _pinned(requirements, "xgboost-cpu", "xgboost"), "model_class": model_class,
            "model_format": artifact.suffix[1:]}


def _lightgbm(artifact: Path, manifest: Manifest, requirements: str) -> dict:
    return {"lgb_version": _pinned(requirements, "lightgbm"), "model_class": "lightgbm.basic.Booster"}


def _catboost(artifact: Path, manifest: Manifest, requirements: str) -> dict:
    model_type = "CatBoostClassifier" if _predicts_labels(manifest) else "CatBoostRegressor"
    return {"catboost_version": _pinned(requirements, "catboost"), "model_type": model_type, "save_format": "cbm"}


# flavor -> the MLmodel flavor section's keys besides data and code (as mlflow.<flavor>.save_model writes them)
_BOOSTER_CONFIG = {"xgboost": _xgboost, "lightgbm": _lightgbm, "catboost": _catboost}


def _pinned(requirements: str, *packages: str) -> str:
    """The version `requirements` pins for the first of `packages` it names, else the one installed here."""
    for package in packages:
        match = re.search(rf"^{re.escape(package)}\s*==\s*([^\s;#]+)", requirements, re.MULTILINE | re.IGNORECASE)
        if match:
            return match.group(1)
    for package in packages:
        try:
            return installed_version(package)
        except PackageNotFoundError:
            continue
    return ""


def _mlmodel(manifest: Manifest):  # -> mlflow.models.Model
    """An MLmodel holding the manifest's signature."""
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    def schema(columns: list) -> Schema:
        return Schema([ColSpec(c.type, c.name, required=c.required) for c in columns])

    return Model(signature=ModelSignature(schema(manifest.signature.inputs), schema(manifest.signature.outputs)))


def _onnx_dir(artifact: Path, manifest: Manifest, requirements: str, target: Path) -> Path:
    """An MLflow onnx model of a single .onnx file. mlflow.onnx's pyfunc runs it with onnxruntime alone (the
    onnx package only for mlflow.onnx.load_model) and answers a DataFrame with one column per graph output:
    a graph of several outputs (a classifier's labels and probabilities) that serves its first is registered
    with that one alone, which needs the onnx package here. Probabilities go through modelops' entry, which
    reads the graph whole."""
    target.mkdir()
    graph = target / "model.onnx"
    shutil.copyfile(artifact, graph)
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None and not _through_modelops(manifest):
        proto = onnx.load(str(artifact))
        if len(proto.graph.output) > 1:
            del proto.graph.output[1:]
            onnx.save_model(proto, str(graph))
    (target / "requirements.txt").write_text(requirements)
    mlmodel = _mlmodel(manifest)
    _python_function(mlmodel, manifest, target, "model.onnx", _through_modelops(manifest))
    mlmodel.add_flavor("onnx", onnx_version=_pinned(requirements, "onnx"), data="model.onnx",
                       providers=["CPUExecutionProvider"], code=None)
    mlmodel.save(str(target / "MLmodel"))
    return target

