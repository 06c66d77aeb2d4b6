"""Compile the versions a manifest serves compiled, and verify each, in the sandboxed child (the artifact is
a pickle, i.e. untrusted code, loaded there as `load_check` loads it).

The child loads the artifact with its flavor, converts it twice (the bytes must repeat: a rebuild changes
nothing), scores the example (or the reference file's rows) and `CHECK_ROWS` rows drawn within their ranges
with both, and writes the graph only when labels are identical and numbers within the tolerance.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import ModelopsError, Problem
from modelops.manifest.load_check import sandboxed
from modelops.manifest.loading import LoadedManifest, read_named

COMPILED_FILE = "model.onnx"
_HINT = "check the artifact and its compile section; it is converted with the packages installed here"


@dataclass(frozen=True)
class Compiled:
    """A version's compiled graph: its sha256 and how it agreed with the model."""

    version: str
    sha256: str
    agreement: str
    path: Path | None


def versions(loaded: LoadedManifest, verified: dict[str, str | Path], out: dict[str, Path] | None = None
             ) -> tuple[dict[str, Compiled], list[Problem]]:
    """Compile and verify each version of `verified` ({version: artifact path}) that the manifest serves
    compiled, writing its graph to `out[version]` when given; the results and the problems, located."""
    m = loaded.manifest
    index = {v.version: i for i, v in enumerate(m.versions)}
    wanted = {v: m.compiled(v) for v in verified if m.compiled(v)}
    if not wanted:
        return {}, []
    problems, requests = [], {}
    for version, spec in wanted.items():
        where = ("versions", index[version], "compile") if m.version(version).compile else ("compile",)
        try:
            rows = _rows(loaded, spec.reference, where)
        except ModelopsError as exc:
            problems += exc.problems
            continue
        requests[version] = {"path": str(verified[version]), "out": str(out[version]) if out else None,
                             "compile": spec.model_dump(mode="json"), "rows": rows, "where": list(where)}
    answers = sandboxed("modelops.manifest.compile_check",
                        {"flavor": m.flavor, "signature": m.signature.model_dump(mode="json"),
                         "method": m.method, "versions": requests}, requests) if requests else {}
    done = {}
    for version, answer in answers.items():
        where = tuple(requests[version]["where"])
        if isinstance(answer, str):
            answer = {"problem": answer}
        if "problem" in answer:
            field = answer.get("field") or ""
            path = where + tuple(field.split(".")[1:]) if field.startswith("compile") else where
            problems.append(loaded.problem(path, f"version {version}: {answer['problem']}",
                                           hint=answer.get("hint") or _HINT))
            continue
        done[version] = Compiled(version, answer["sha256"], answer["agreement"],
                                 Path(requests[version]["out"]) if out else None)
    return done, problems


def _rows(loaded: LoadedManifest, reference: str | None, where: tuple) -> list[dict]:
    """The input records the compiled model is checked on: the reference file's, else the example's."""
    if reference is None:
        if loaded.manifest.example is None:
            raise ModelopsError.of([loaded.problem(where, "a compiled model needs rows to be checked on",
                                                   hint="add an example, or name a reference file in compile")])
        try:
            data = json.loads(loaded.read("example"))
        except ValueError:
            data = None  # validate reports the example itself
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), list) or not data["inputs"]:
            raise ModelopsError.of([loaded.problem(where, "the example has no rows to check the compiled model on",
                                                   hint="fix example.json, or name a reference file")])
        return data["inputs"]
    text = read_named(loaded.folder, reference, "reference", loaded.display, loaded.line(*where, "reference"))
    try:
        return _records(reference, text, loaded.manifest.signature.inputs)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelopsError.of([loaded.problem((*where, "reference"), f"{reference}: {exc}",
                                               hint="a CSV file with a header of the input columns, or JSON "
                                                    '{"inputs": [records]} or a list of records')]) from None


def _records(name: str, text: str, inputs: list) -> list[dict]:
    if not name.endswith(".csv"):
        data = json.loads(text)
        rows = data["inputs"] if isinstance(data, dict) else data
        if not isinstance(rows, list) or not rows:
            raise ValueError("expected a list of records")
        return rows
    kinds = {c.name: c.type for c in inputs}
    convert = {"double": float, "float": float, "integer": int, "long": int,
               "boolean": lambda v: {"true": True, "false": False}[v.strip().lower()]}
    reader = csv.DictReader(io.StringIO(text))
    missing = set(kinds) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"the header lacks {', '.join(sorted(missing))}")
    rows = [{k: convert.get(kinds[k], str)(v) for k, v in row.items() if k in kinds} for row in reader]
    if not rows:
        raise ValueError("no rows")
    return rows


def _compile(flavor: str, signature: dict, method: str, request: dict) -> dict:
    """In the child: load, convert twice, verify, write; {"sha256", "agreement"} or {"problem", ...}."""
    import numpy as np

    from modelops import flavors
    from modelops.flavors import compiled, onnx
    from modelops.manifest.model import Compile, Signature
    from modelops.signature.compiled import CompiledSignature, SignatureError
    from modelops.signature.probabilities import class_problem

    sig = Signature.model_validate(signature)
    spec = Compile.model_validate(request["compile"])
    try:
        base = CompiledSignature(sig.inputs).records(request["rows"], "rows")
    except SignatureError as exc:
        return {"problem": f"the rows to check on do not fit the signature: {exc.field}: {exc.message}"}
    original = flavors.load(flavor, Path(request["path"]), sig.inputs, method)
    model = compiled.native(original)
    data = compiled.check_rows(base, [c.type for c in sig.inputs])
    classes = getattr(original, "classes", None)  # the flavor's labels (a raw booster has no classes_)
    graph = compiled.convert(model, len(sig.inputs), spec.precision, classes)
    if compiled.convert(model, len(sig.inputs), spec.precision, classes) != graph:
        return {"problem": "converting it twice gave different graphs", "field": "compile",
                "hint": "a rebuild must change nothing: report the converter's nondeterminism, or remove compile"}
    out = Path(request["out"] or COMPILED_FILE).absolute()
    staging = out.with_name(f".{out.name}.partial")
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_bytes(graph)
    try:
        try:
            served = onnx.load(staging, sig.inputs, method)
        except ModelopsError as exc:
            raise ModelopsError(f"ONNX Runtime cannot run the {spec.precision}-precision graph: "
                                f"{exc.problem.message.split(': ', 1)[-1]}", field="compile.precision",
                                hint="tree ensembles run as float32 graphs: set compile.precision: float and "
                                     "the tolerance they meet" if spec.precision == "double" else _HINT) from None
        labels_declared = CompiledSignature(sig.inputs, sig.outputs, method).labels
        if method == "predict_proba" and (wrong := class_problem(getattr(served, "classes", None), labels_declared)):
            raise ModelopsError(f"the compiled graph's classes: {wrong[0]}", field="compile", hint=wrong[1])
        expected = np.asarray(original.predict(data))
        labels = method == "predict" and (compiled.is_classifier(model) or expected.dtype.kind not in "fc")
        found = compiled.agreement(expected, served.predict(data), spec.tolerance.absolute,
                                   spec.tolerance.relative, labels)
    except BaseException:
        staging.unlink()
        raise
    staging.rename(out)
    return {"sha256": hashlib.sha256(graph).hexdigest(), "agreement": found.describe()}


def _main() -> None:
    request = json.loads(sys.stdin.read())
    results = {}
    for version, entry in request["versions"].items():
        try:
            results[version] = _compile(request["flavor"], request["signature"], request["method"], entry)
        except ModelopsError as exc:
            results[version] = {"problem": exc.problem.message, "field": exc.problem.field, "hint": exc.problem.hint}
        except Exception:
            results[version] = {"problem": "the compiler failed: " + traceback.format_exc().splitlines()[-1][:300]}
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    _main()
