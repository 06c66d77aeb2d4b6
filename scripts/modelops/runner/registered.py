"""What to serve of a `models:/` registry URI: the registered version, downloaded with MLflow.

A version whose python_function is modelops' entry (`flavors.mlflow_entry`, as `apply` registers a booster's
or a graph's probabilities) loads with its own flavor, as from a model folder; any other through
`mlflow.pyfunc`, answering its MLmodel's `predict_fn` (predict, or predict_proba). A version of class
probabilities is first loaded in the sandboxed child, to read its classes: the outputs are one probability
column per class.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from modelops import flavors, settings
from modelops.errors import ModelopsError
from modelops.flavors import mlflow_entry
from modelops.flavors.python_function import answered_method
from modelops.manifest import classes_read
from modelops.manifest.model import Column
from modelops.registry import projection as state
from modelops.runner.loading import ServedModel
from modelops.signature.compiled import CompiledSignature
from modelops.signature.probabilities import PREDICT_PROBA
from modelops.workspace import find_root

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


def from_registry(uri: str) -> ServedModel:
    """The ServedModel of a `models:/NAME@ALIAS` or `models:/NAME/VERSION` URI."""
    match = _MODELS_URI.match(uri)
    if not match:
        raise ModelopsError(f"{uri!r} is not a models:/ URI", hint="use models:/NAME@ALIAS or models:/NAME/VERSION")
    settings.mlflow_defaults()
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        _use_repository_registry()
    import mlflow.artifacts
    from mlflow import MlflowClient

    name = match["name"]
    try:
        client = MlflowClient()
        if match["alias"]:
            registered = client.get_model_version_by_alias(name, match["alias"])
        else:
            registered = client.get_model_version(name, match["version"])
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:
        raise ModelopsError(f"cannot fetch {uri}: {type(exc).__name__}: {str(exc)[:300]}",
                            hint=f"check the tracking URI ({os.environ.get('MLFLOW_TRACKING_URI', 'MLflow default')}), "
                                 "the model name and the alias") from None
    spec = _mlmodel(local, uri)
    inputs, outputs, example = _signature(spec, local, uri)
    flavor, path, method = _loader(spec, local, uri)

    if method == PREDICT_PROBA:
        outputs = classes_read.probability_columns(classes_read.classes(flavor, path, inputs, method, uri), outputs,
                                                   uri)

    def load() -> flavors.Predictor:
        return flavors.load(flavor, path, inputs, method)

    # The semantic version apply tags each registered version with; the registry's number otherwise.
    version = (registered.tags or {}).get(state.VERSION) or str(registered.version)
    return ServedModel(model=re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model",
                       description=f"{uri} (registered version {registered.version})",
                       signature=CompiledSignature(inputs, outputs, method), primary=version,
                       loaders={version: load}, flavor=flavor, environment=match["alias"] or "", example=example)


def _use_repository_registry() -> None:
    """Point MLflow (in this process and its workers) at the registry `apply` uses: the tracking URI of the
    repository around the working folder ([tool.modelops], the environment, the embedded default). Outside
    a repository, MLflow keeps its own default."""
    try:
        root = find_root()
    except ModelopsError:
        return
    os.environ["MLFLOW_TRACKING_URI"] = settings.load(root).tracking_uri


def _mlmodel(local: Path, uri: str) -> dict:
    try:
        spec = yaml.safe_load((local / "MLmodel").read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelopsError(f"{uri}: the MLmodel file does not read ({type(exc).__name__})",
                            hint="register an MLflow model (mlflow.<flavor>.log_model)") from None
    if not isinstance(spec, dict):
        raise ModelopsError(f"{uri}: the MLmodel file is not a mapping", hint="register an MLflow model")
    return spec


def _loader(spec: dict, local: Path, uri: str) -> tuple[str, Path, str]:
    """(flavor, path, method) that load the downloaded model in `local` as its python_function answers."""
    from mlflow.pyfunc import MODEL_CONFIG

    sections = spec.get("flavors")
    function = sections.get("python_function") if isinstance(sections, dict) else None
    function = function if isinstance(function, dict) else {}
    config = function.get(MODEL_CONFIG)
    config = config if isinstance(config, dict) else {}
    if mlflow_entry.is_loader(function.get("loader_module")) and config.get("flavor") in mlflow_entry.FLAVORS:
        data = (local / function["data"]).resolve() if isinstance(function.get("data"), str) else local
        if not data.is_relative_to(local.resolve()) or not data.exists():
            raise ModelopsError(f"{uri}: its MLmodel's python_function data {function['data']!r} is not a file of "
                                "the model", hint="register the model with modelops apply, or with MLflow's own "
                                "save_model")
        return config["flavor"], data, answered_method(spec)
    return "pyfunc", local, answered_method(spec)


def _columns(spec: str) -> list[Column]:
    return [Column.model_validate({k: c[k] for k in ("name", "type", "required") if k in c})
            for c in json.loads(spec)]


# the numpy dtypes of MLflow's tensor specs -> column types
_TENSOR_TYPES = {"bool": "boolean", "int32": "integer", "int64": "long", "float32": "float", "float64": "double",
                 "str": "string", "object": "string"}


def _vector(spec: str | None) -> list[Column] | None:
    """One `predictions` column for an output schema that is one tensor of shape [-1] (MLflow's
    `infer_signature` on a model's 1-D predictions); None for any other (predictions are served untyped)."""
    try:
        (tensor,) = json.loads(spec or "null")
        if tensor["type"] == "tensor" and tensor["tensor-spec"]["shape"] == [-1]:
            return [Column(name="predictions", type=_TENSOR_TYPES[tensor["tensor-spec"]["dtype"]])]
    except (ValueError, TypeError, KeyError):
        pass
    return None


def _signature(spec: dict, local: Path, uri: str) -> tuple[list[Column], list[Column] | None, list[dict] | None]:
    """Input columns (required), output columns (None when not named columns) and the saved input example."""
    try:
        inputs = _columns(spec["signature"]["inputs"])
    except Exception as exc:
        raise ModelopsError(f"{uri}: the MLmodel file has no usable column signature ({type(exc).__name__})",
                            hint="log the model with a column-based signature (infer_signature on a DataFrame)"
                            ) from None
    try:
        outputs = _columns(spec["signature"]["outputs"])
    except Exception:
        outputs = _vector(spec.get("signature", {}).get("outputs"))
    example = None
    info = spec.get("saved_input_example_info") or {}
    if info.get("artifact_path"):
        try:
            split = json.loads((local / info["artifact_path"]).read_text())
            split = split.get("dataframe_split", split)
            example = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
        except (OSError, ValueError, KeyError, TypeError):
            example = None
    return inputs, outputs, example
