"""onnx: an `.onnx` file or an MLflow onnx model directory, scored with ONNX Runtime (no mlflow, no pandas).

The graph takes either one `[N, columns]` tensor (the signature's columns in order) or one tensor per
column, named as the column (`[N]` or `[N, 1]`), as it declares. `predict` returns the graph's first output
(labels or values); `predict_proba` its probability tensor (a classifier converted with `zipmap=False`),
with the class labels from the graph (its metadata `classes`, else the classifier node's labels).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelops.errors import ModelopsError
from modelops.flavors import Predictor

CLASSES_KEY = "classes"  # metadata property holding the class labels as JSON (compiled graphs carry it)
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
           "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": np.object_}
_ZIPMAP_HINT = "convert the classifier with zipmap=False (skl2onnx options) so its probabilities are a tensor"


def load(path: Path, inputs: Sequence, method: str = "predict") -> Predictor:
    """A session on the graph in `path` (a file, or an MLflow onnx model directory), fed in signature order."""
    graph = _graph_file(path)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread per session: a request's batch is small, and the runner's workers share the cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        reason = re.sub(r"Load model from \S+ failed:", "", str(exc))  # no temporary paths in the message
        raise ModelopsError(f"ONNX Runtime cannot load {graph.name}: {reason[:300]}",
                            hint="an ONNX model file (onnx.save_model) that this onnxruntime version runs") from None
    return OnnxPredictor(session, graph, inputs, method)


def _graph_file(path: Path) -> Path:
    if path.is_file():
        return path
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise ModelopsError(f"{path.name}/ has no MLmodel file", hint="save it with mlflow.onnx.save_model")
    spec = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("onnx")
    if not spec or not isinstance(spec.get("data"), str):
        raise ModelopsError(f"{path.name}/MLmodel has no onnx flavor", hint="save it with mlflow.onnx.save_model")
    graph = (path / spec["data"]).resolve()
    if not graph.is_file() or not graph.is_relative_to(path.resolve()):
        raise ModelopsError(f"{path.name}/MLmodel names {spec['data']!r}, which is not a file of the model")
    return graph


class OnnxPredictor:
    """Feeds a signature-ordered batch to the graph and returns the output `method` asks for."""

    def __init__(self, session: Any, graph: Path, inputs: Sequence, method: str) -> None:
        self._session = session
        self._feeds = _feeds(session.get_inputs(), [c.name for c in inputs], graph.name)
        outputs = session.get_outputs()
        if method == "predict":
            self._output = outputs[0].name
        elif method == "predict_proba":
            self._output = _probability_output(outputs, graph.name)
            self.classes = _classes(session, graph)
        else:
            raise ModelopsError(f"method {method!r} is not one the onnx flavor serves",
                                field="method", hint="use predict or predict_proba")
        self._method = method

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        feed = {name: make(batch) for name, make in self._feeds}
        (result,) = self._session.run([self._output], feed)
        result = np.asarray(result)
        if self._method == "predict_proba":
            return result.astype(np.float64, copy=False)
        return result.reshape(len(batch)) if result.ndim == 2 and result.shape[1] == 1 else result


def _dtype(node: Any, graph: str) -> type:
    if node.type not in _DTYPES:
        raise ModelopsError(f"{graph}: input {node.name!r} is a {node.type}, which the runner cannot feed",
                            field="signature.inputs",
                            hint="the graph's inputs must be numeric, boolean or string tensors")
    return _DTYPES[node.type]


def _feeds(nodes: list, columns: list[str], graph: str) -> list[tuple[str, Any]]:
    """(input name, batch -> tensor) per graph input: one [N, columns] tensor, or one tensor per column."""
    declared = ", ".join(f"{n.name} {n.type}{list(n.shape)}" for n in nodes)
    width = nodes[0].shape[1] if len(nodes) == 1 and len(nodes[0].shape) == 2 else -1
    if width == len(columns) or width is None or isinstance(width, str):  # None, a name: any width
        dtype = _dtype(nodes[0], graph)
        return [(nodes[0].name, lambda batch: batch.astype(dtype, copy=False))]
    if sorted(n.name for n in nodes) == sorted(columns) and all(len(n.shape) in (1, 2) for n in nodes):
        feeds = []
        for node in nodes:
            j, dtype, rank = columns.index(node.name), _dtype(node, graph), len(node.shape)

            def make(batch: np.ndarray, j: int = j, dtype: type = dtype, rank: int = rank) -> np.ndarray:
                column = batch[:, j].astype(dtype, copy=False)
                return column.reshape(-1, 1) if rank == 2 else column
            feeds.append((node.name, make))
        return feeds
    raise ModelopsError(f"{graph}: the graph's inputs ({declared}) do not fit the signature's "
                        f"{len(columns)} input columns", field="signature.inputs",
                        hint=f"the graph takes one [N, {len(columns)}] tensor, or one tensor per column named as "
                             f"the column ({', '.join(columns)})")


def _probability_output(outputs: list, graph: str) -> str:
    tensors = [o for o in outputs if o.type in ("tensor(float)", "tensor(double)") and len(o.shape) == 2]
    if len(outputs) < 2 or not tensors:
        maps = [o.name for o in outputs if o.type.startswith("seq(map")]
        raise ModelopsError(f"{graph} has no probability tensor output (outputs: "
                            f"{', '.join(f'{o.name} {o.type}' for o in outputs)})", field="method",
                            hint=_ZIPMAP_HINT if maps else "predict_proba needs a classifier's [N, classes] output")
    return tensors[-1].name


def _classes(session: Any, graph: Path) -> list:
    """The class labels: the graph's `classes` metadata, else its classifier node's labels or its `classes`
    constant (reading the graph needs the onnx package)."""
    meta = session.get_modelmeta().custom_metadata_map
    if CLASSES_KEY in meta:
        return json.loads(meta[CLASSES_KEY])
    try:
        import onnx
    except ImportError:
        raise ModelopsError(f"{graph.name} does not say its class labels", field="method",
                            hint=f"add onnx to requirements.txt, or store them as metadata {CLASSES_KEY!r} "
                                 "(a JSON list)") from None
    from onnx import numpy_helper

    proto = onnx.load(str(graph)).graph
    for node in proto.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_int64s":
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings":
                return [v.decode() for v in attribute.strings]
    for tensor in proto.initializer:  # skl2onnx's linear classifiers pick labels from a `classes` constant
        if tensor.name == "classes":
            return numpy_helper.to_array(tensor).tolist()
    raise ModelopsError(f"{graph.name} has no classifier node naming its classes", field="method",
                        hint=f"store the class labels as metadata {CLASSES_KEY!r} (a JSON list)")
