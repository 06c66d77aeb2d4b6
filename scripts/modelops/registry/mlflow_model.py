"""Make an MLflow model directory of a verified artifact, so plain MLflow can load the registered version.

An MLflow model directory (it has an `MLmodel`) is used as it is. A single scikit-learn file is wrapped
without being loaded: it is copied next to an `MLmodel` that names it (sklearn flavor, `skops` or
`pickle` serialization, python_function entry point), the manifest's signature and its requirements.
A single `.onnx` file becomes an MLflow onnx model the same way (pyfunc loader `mlflow.onnx`).
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.flavors.sklearn import skops_types
from modelops.manifest.model import Manifest

_FORMATS = {".skops": "skops", ".pkl": "pickle", ".pickle": "pickle"}


def model_dir(artifact: Path, manifest: Manifest, requirements: str, work: Path) -> Path:
    """`artifact` itself when it is an MLflow model directory, else a directory made in `work` (with the
    model's `requirements` text)."""
    if artifact.is_dir():
        if not (artifact / "MLmodel").is_file():
            raise ModelopsError(f"{artifact.name}/ has no MLmodel file",
                                hint="an artifact folder is an MLflow model directory (mlflow.<flavor>.save_model)")
        return artifact
    if manifest.flavor == "onnx" and artifact.suffix == ".onnx":
        return _onnx_dir(artifact, manifest, requirements, work / "model")
    fmt = _FORMATS.get(artifact.suffix)
    if manifest.flavor != "sklearn" or fmt is None:
        raise ModelopsError(f"cannot make an MLflow model of {artifact.name} (flavor {manifest.flavor})",
                            hint="use an MLflow model directory, or a scikit-learn .skops or .pkl file")
    import mlflow.pyfunc

    target = work / "model"
    target.mkdir()
    filename = f"model{artifact.suffix}"
    shutil.copyfile(artifact, target / filename)
    (target / "requirements.txt").write_text(requirements)
    mlmodel = _mlmodel(manifest)
    mlflow.pyfunc.add_to_model(mlmodel, loader_module="mlflow.sklearn", model_path=filename)
    mlmodel.add_flavor("sklearn", pickled_model=filename, serialization_format=fmt, code=None,
                       sklearn_version=_pinned(requirements, "scikit-learn"),
                       skops_trusted_types=skops_types(artifact) if fmt == "skops" else None)
    mlmodel.save(str(target / "MLmodel"))
    return target


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
    a graph of several outputs (a classifier's labels and probabilities) is registered with the one the
    manifest serves, its first, which needs the onnx package here."""
    import mlflow.pyfunc

    target.mkdir()
    graph = target / "model.onnx"
    shutil.copyfile(artifact, graph)
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        proto = onnx.load(str(artifact))
        if len(proto.graph.output) > 1:
            del proto.graph.output[1:]
            onnx.save_model(proto, str(graph))
    (target / "requirements.txt").write_text(requirements)
    mlmodel = _mlmodel(manifest)
    mlflow.pyfunc.add_to_model(mlmodel, loader_module="mlflow.onnx", data="model.onnx")
    mlmodel.add_flavor("onnx", onnx_version=_pinned(requirements, "onnx"), data="model.onnx",
                       providers=["CPUExecutionProvider"], code=None)
    mlmodel.save(str(target / "MLmodel"))
    return target


def _pinned(requirements: str, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}\s*==\s*([^\s;#]+)", requirements, re.MULTILINE | re.IGNORECASE)
    if match:
        return match.group(1)
    try:
        return installed_version(package)
    except PackageNotFoundError:
        return ""
