"""Load each artifact and score the example, in a child process: pickles are untrusted code.

The parent (`check`) gives the child a clean environment with no credentials, a CPU and wall-clock
limit, and reads one JSON line of results; a crash, a hang or garbage is reported, never propagated.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.flavors import Predictor
    from modelops.signature.compiled import CompiledSignature

DEFAULT_TIMEOUT = 120  # seconds; MODELOPS_LOAD_TIMEOUT overrides it
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")


def check(flavor: str, artifacts: dict[str, str], signature: dict, rows: list[dict] | None,
          expected: list[dict] | None = None, method: str = "predict") -> dict[str, str | dict]:
    """Load each artifact ({version: path}) to answer `method`, score `rows` with it unless they are None,
    and compare with `expected` outputs when given; returns {version: problem} (an empty problem when
    fine), a problem of another field than the artifact as {"message", "field": [path], "hint"}."""
    request = {"flavor": flavor, "artifacts": artifacts, "signature": signature, "rows": rows,
               "expected": expected, "method": method}
    return sandboxed("modelops.manifest.load_check", request, artifacts)


def sandboxed(module: str, request: dict, keys: Iterable[str]) -> dict:
    """Run `python -m module` in the sandbox with `request` (JSON) on stdin; its last stdout line, parsed
    (one entry per key), or the same problem for every key when it crashed or timed out."""
    timeout = int(os.environ.get("MODELOPS_LOAD_TIMEOUT", DEFAULT_TIMEOUT))
    with tempfile.TemporaryDirectory(prefix="modelops-load-") as home:
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        if env.get("PYTHONPATH"):  # the child runs in `home`: a relative entry would name another folder
            env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
        env.update(HOME=home, MLFLOW_DISABLE_TELEMETRY="true", PYTHONDONTWRITEBYTECODE="1")

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_CPU, (timeout, timeout))

        try:
            done = subprocess.run([sys.executable, "-m", module], input=json.dumps(request), env=env,
                                  cwd=home, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=limits, start_new_session=True, check=False)
        except subprocess.TimeoutExpired:
            return dict.fromkeys(keys, f"loading and scoring took longer than {timeout}s")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return dict.fromkeys(keys, f"the loader crashed: {last[:300]}")


def _score(flavor: str, path: str, signature: dict, rows: list[dict] | None, expected: list[dict] | None,
           method: str) -> str | dict:
    import numpy as np

    from modelops import flavors
    from modelops.errors import ModelopsError
    from modelops.manifest.model import Signature
    from modelops.signature.compare import compare_outputs
    from modelops.signature.compiled import CompiledSignature, SignatureError

    sig = Signature.model_validate(signature)
    compiled = CompiledSignature(sig.inputs, sig.outputs, method)
    try:
        model = flavors.load(flavor, Path(path), sig.inputs, method)
    except ModelopsError as exc:
        if exc.problem.field:
            return {"message": f"{flavor}: {exc.problem.message}", "field": exc.problem.field.split("."),
                    "hint": exc.problem.hint}
        hint = f" ({exc.problem.hint})" if exc.problem.hint else ""  # what to do about this artifact
        return f"does not load as {flavor}: {exc}{hint}"
    except Exception as exc:
        return f"does not load as {flavor}: {type(exc).__name__}: {str(exc)[:300]}"
    if problem := _method_problem(flavor, Path(path), method, compiled, model):
        return problem
    if rows is None:
        return ""
    try:  # the array the runner would score
        batch = compiled.records(rows, "example.inputs")
    except SignatureError as exc:
        return f"the example does not fit the signature: {exc.field}: {exc.message}"
    try:
        predictions = np.asarray(model.predict(batch)).tolist()
    except Exception as exc:
        return f"loads, but fails to score the example: {type(exc).__name__}: {str(exc)[:300]}"
    problems = compiled.check_outputs(predictions, len(rows))
    if not problems and expected:
        problems = compare_outputs(predictions, expected, compiled.outputs or [])
    return "; ".join(problems)


def _method_problem(flavor: str, path: Path, method: str, compiled: CompiledSignature,
                    model: Predictor) -> dict | None:
    """What plain MLflow would answer (an MLflow directory's `predict_fn`) or the model's classes, when they
    do not fit `method` and the declared outputs. (Only sklearn's and pyfunc's MLflow loaders honour
    `predict_fn`; the boosters' predictors answer the method themselves.)"""
    from modelops.signature.probabilities import class_problem

    if flavor in ("sklearn", "pyfunc") and (path / "MLmodel").is_file():
        import yaml

        from modelops.flavors.python_function import answered_method
        from modelops.manifest.model import METHODS

        predict_fn = answered_method(yaml.safe_load((path / "MLmodel").read_text()))
        if predict_fn != method:
            instead = f"set method: {predict_fn}, or " if predict_fn in METHODS else ""
            return {"message": f"its MLmodel makes MLflow answer {predict_fn}, the manifest says method: {method}",
                    "field": ["method"], "hint": f"{instead}save the model with pyfunc_predict_fn={method!r} "
                    "(mlflow.sklearn.save_model) so that plain MLflow answers the same"}
    if compiled.probabilities and (wrong := class_problem(getattr(model, "classes", None), compiled.labels)):
        return {"message": wrong[0], "field": ["signature", "outputs"], "hint": wrong[1]}
    return None


def _main() -> None:
    request = json.loads(sys.stdin.read())
    results = {}
    for version, path in request["artifacts"].items():
        try:
            results[version] = _score(request["flavor"], path, request["signature"], request["rows"],
                                      request["expected"], request["method"])
        except Exception:
            results[version] = "the loader failed: " + traceback.format_exc().splitlines()[-1][:300]
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    _main()
