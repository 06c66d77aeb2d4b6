"""The runner against `mlflow models serve`, same model, same machine, same load, one after the other.

Serves models/diabetes (RandomForestRegressor, 100 trees) with `mlflow models serve --env-manager local`
(from an MLflow model directory made from the .skops artifact in a temporary folder), with `modelops serve`
(scikit-learn), with `modelops serve` of the same forest compiled to ONNX (models/diabetes-compiled, as its
image serves it: the rendered context's model folder), and a do-nothing FastAPI endpoint under the same
uvicorn settings (the floor: it reads the body and answers a constant), and the trivial FastAPI endpoint
the goals of the compiled path are set against (a `payload: dict` body: FastAPI parses the JSON and answers
a constant; the parsing floor). Drives each with wrk (concurrency 8)
POSTing 1-row and 100-row `dataframe_split` bodies, and prints requests/s, p50 and p99 side by side.

With `--baseline REV`, `modelops serve` of that git revision (e.g. the last release) serves the same model
beside this tree's, both up at once, driven in alternation (`--rounds` each, in opposite orders) so that
both see the same machine; the medians are compared (this tree must keep 95 % of the baseline's rate).

    python benchmarks/runner_vs_mlflow.py [--duration 20] [--connections 8] [--baseline 885472a --rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import drive, post, pss_mib, server  # noqa: E402
from tests.processes import free_port  # noqa: E402

MODEL = ROOT / "models" / "diabetes"
COMPILED = ROOT / "models" / "diabetes-compiled"
GOALS = {1: 5.0, 100: 2.0}  # requests/s ratio the runner must reach, by rows per request
# The compiled path: at least half the parsing floor, 50x MLflow, 3x scikit-learn on 100 rows, p99 under 10 ms.
COMPILED_GOALS = {"floor": 0.5, "mlflow": 50.0, "sklearn_100": 3.0, "p99_ms": 10.0}
KEPT = 0.95  # of the baseline's requests/s, by rows per request (a regression of at most 5 %)
MEMORY = 1.3  # at most the baseline's proportional set size times this (the runner's processes share the model)
FLOOR_APP = """
import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()

@app.get("/ping")
def ping() -> Response:
    return Response(b"")

@app.post("/invocations")
async def invocations(request: Request) -> Response:
    await request.body()
    return Response(b'{"predictions": []}', media_type="application/json")

if "--parse" in __import__("sys").argv:
    app = FastAPI()  # the trivial endpoint that parses the body

    @app.get("/ping")
    def ping_parsing() -> Response:
        return Response(b"")

    @app.post("/invocations")
    async def parsing(payload: dict) -> dict:
        return {"predictions": []}

if "--array" in __import__("sys").argv:
    import numpy as np
    import orjson

    app = FastAPI()  # the least any Python server does for a dataframe_split body: parse it into an array

    @app.get("/ping")
    def ping_array() -> Response:
        return Response(b"")

    @app.post("/invocations")
    async def array(request: Request) -> Response:
        rows = np.asarray(orjson.loads(await request.body())["dataframe_split"]["data"], dtype=np.float64)
        return Response(orjson.dumps({"predictions": np.zeros(len(rows))}, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), loop="uvloop", http="httptools",
            access_log=False, log_level="warning", timeout_keep_alive=30)
"""


def bodies() -> dict[int, str]:
    """1-row and 100-row dataframe_split bodies from the diabetes data set."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True).data
    return {rows: json.dumps({"dataframe_split": {"columns": list(data.columns),
                                                  "data": data.iloc[:rows].values.tolist()}})
            for rows in (1, 100)}


def compiled_model(folder: Path) -> Path:
    """The model folder of diabetes-compiled's image, rendered (the conversion is verified there)."""
    out = folder / "compiled-context"
    subprocess.run([sys.executable, "-m", "modelops", "render", str(COMPILED), "--version", "1.0.0",
                    "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    return out / "model"


def mlflow_model_dir(folder: Path) -> Path:
    """An MLflow model directory holding the same RandomForest as the .skops artifact."""
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes

    path = MODEL / "artifacts" / "1.0.0" / "model.skops"
    model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    frame = load_diabetes(as_frame=True).data.iloc[:5]
    target = folder / "mlflow-model"
    mlflow.sklearn.save_model(model, str(target), serialization_format="cloudpickle",
                              signature=infer_signature(frame, model.predict(frame.values)))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per server and body size")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--baseline", help="a git revision whose modelops serve is measured beside this tree's")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: alternating runs of each")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: ./scripts/setup.sh --system installs it")
    payloads = bodies()
    results: dict[str, dict[int, dict]] = {}
    answers: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        folder = Path(tmp)
        model_dir, compiled_dir = mlflow_model_dir(folder), compiled_model(folder)
        bin_dir = Path(sys.executable).parent
        servers = {
            "mlflow models serve": lambda port: [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir),
                                                 "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            "modelops serve": lambda port: [sys.executable, "-m", "modelops", "serve", str(MODEL),
                                            "--env", "production", "--port", str(port)],
            "compiled (ONNX)": lambda port: [sys.executable, "-m", "modelops", "serve", str(compiled_dir),
                                             "--version", "1.0.0", "--port", str(port)],
            "FastAPI floor": lambda port: [sys.executable, "-c", FLOOR_APP, str(port)],
            "FastAPI parsing": lambda port: [sys.executable, "-c", FLOOR_APP, str(port), "--parse"],
        }
        for name, command in servers.items():
            port = free_port()
            print(f"{name}: starting", file=sys.stderr, flush=True)
            with server(command(port), port, folder / f"{name.split()[0]}.log"):
                answers[name] = post(port, "/invocations", payloads[100])["predictions"]
                results[name] = {}
                for rows, body in payloads.items():
                    print(f"{name}: {rows}-row bodies, {args.duration}s at concurrency {args.connections}",
                          file=sys.stderr, flush=True)
                    results[name][rows] = drive(port, body, args.duration, args.connections, folder)
        paired = against_baseline(args, payloads, folder) if args.baseline else None
    failed = report(results, answers, args) + (report_baseline(*paired, args) if paired else [])
    print("\ngoals met" if not failed else "\ngoals NOT met:\n  " + "\n  ".join(failed))
    sys.exit(1 if failed else 0)


def against_baseline(args: argparse.Namespace, payloads: dict[int, str],
                     folder: Path) -> tuple[dict[str, dict[int, dict]], dict[str, float]]:
    """This tree's and the baseline's `modelops serve`, both up, driven in alternation: each one's median run
    by rows, and each one's PSS in MiB after the load."""
    checkout = folder / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(checkout), args.baseline],
                   check=True)
    sides = {f"modelops {args.baseline}": (checkout / "scripts", checkout / "models" / "diabetes"),
             "modelops (this tree)": (ROOT / "scripts", MODEL)}
    runs: dict[str, dict[int, list[dict]]] = {name: {rows: [] for rows in payloads} for name in sides}
    try:
        with contextlib.ExitStack() as stack:
            ports, pids = {}, {}
            for name, (scripts, model) in sides.items():
                ports[name] = port = free_port()
                command = [sys.executable, "-m", "modelops", "serve", str(model), "--env", "production",
                           "--port", str(port)]
                pids[name] = stack.enter_context(server(command, port, folder / f"side-{port}.log",
                                                        {"PYTHONPATH": str(scripts)})).pid
            for rows, body in payloads.items():
                for turn in range(args.rounds):
                    for name in (list(sides) if turn % 2 == 0 else list(sides)[::-1]):
                        print(f"{name}: {rows}-row bodies, round {turn + 1} of {args.rounds}", file=sys.stderr,
                              flush=True)
                        runs[name][rows].append(drive(ports[name], body, args.duration, args.connections, folder))
            memory = {name: pss_mib(pid) for name, pid in pids.items()}  # after the load: what serving holds
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], check=False)
    return {name: {rows: sorted(found, key=lambda r: r["rps"])[len(found) // 2] for rows, found in by_rows.items()}
            for name, by_rows in runs.items()}, memory


def report_baseline(paired: dict[str, dict[int, dict]], memory: dict[str, float],
                    args: argparse.Namespace) -> list[str]:
    """Print this tree beside the baseline (medians of the alternating runs); the goals not met."""
    baseline, ours = list(paired)
    print(f"\nthis tree against {args.baseline}, both up at once, {args.rounds} alternating runs of "
          f"{args.duration}s each (medians):\n")
    print(f"{'rows':>4}  {'':<8}{baseline:>24}{ours:>24}{'ratio':>10}")
    failed = []
    for rows in paired[ours]:
        then, now = paired[baseline][rows], paired[ours][rows]
        for key, unit in (("rps", "req/s"), ("p50", "p50 ms"), ("p99", "p99 ms")):
            print(f"{rows if key == 'rps' else '':>4}  {unit:<8}{then[key]:>24.1f}{now[key]:>24.1f}"
                  f"{now[key] / then[key]:>10.3f}")
        if now["rps"] < KEPT * then["rps"] or now["errors"]:
            failed.append(f"{rows} rows: this tree keeps >= {KEPT:.0%} of {args.baseline}'s requests/s")
    then, now = memory[baseline], memory[ours]
    print(f"{'':>4}  {'PSS MiB':<8}{then:>24.1f}{now:>24.1f}{now / then:>10.3f}   (the process tree, after the load)")
    if now > MEMORY * then:
        failed.append(f"memory: this tree's process tree holds <= {MEMORY}x {args.baseline}'s (PSS)")
    return failed


def report(results: dict[str, dict[int, dict]], answers: dict[str, list], args: argparse.Namespace) -> list[str]:
    """Print the table and the goals; the goals not met."""
    mlflow_name, ours, compiled, _, _ = list(results)
    same = all(abs(a - b) < 1e-9 for a, b in zip(answers[mlflow_name], answers[ours], strict=True))
    close = max(abs(a - b) for a, b in zip(answers[ours], answers[compiled], strict=True))
    print(f"\nRandomForestRegressor (100 trees), wrk -t2 -c{args.connections} -d{args.duration}s, "
          f"POST /invocations dataframe_split; same predictions: {'yes' if same else 'NO'}; compiled: within "
          f"{close:.2g} of scikit-learn\n")
    header = f"{'rows':>4}  {'':<8}" + "".join(f"{name:>21}" for name in results)
    print(header)
    print("-" * len(header))
    failed = [] if same else ["predictions"]
    for rows in (1, 100):
        for key, unit in (("rps", "req/s"), ("p50", "p50 ms"), ("p99", "p99 ms"), ("errors", "errors")):
            cells = "".join(f"{results[name][rows][key]:>21.1f}" if key != "errors"
                            else f"{results[name][rows][key]:>21}" for name in results)
            print(f"{rows if key == 'rps' else '':>4}  {unit:<8}{cells}")
        theirs, mine, fast, nothing, parsing = (results[name][rows] for name in results)
        vs_floor, vs_parsing, vs_mlflow, vs_sklearn = (fast["rps"] / other["rps"]
                                                       for other in (nothing, parsing, theirs, mine))
        checks = {
            f"modelops serve >= {GOALS[rows]}x mlflow": mine["rps"] / theirs["rps"] >= GOALS[rows],
            "modelops serve p99 below mlflow's": mine["p99"] < theirs["p99"],
            f"compiled >= {COMPILED_GOALS['floor']}x the parsing floor": vs_parsing >= COMPILED_GOALS["floor"],
            f"compiled >= {COMPILED_GOALS['mlflow']:.0f}x mlflow": vs_mlflow >= COMPILED_GOALS["mlflow"],
            f"compiled p99 < {COMPILED_GOALS['p99_ms']:.0f} ms": fast["p99"] < COMPILED_GOALS["p99_ms"],
            "no errors": not (mine["errors"] or fast["errors"]),
        }
        if rows == 100:
            checks[f"compiled >= {COMPILED_GOALS['sklearn_100']}x modelops serve (scikit-learn)"] = \
                vs_sklearn >= COMPILED_GOALS["sklearn_100"]
        ratios = (f"compiled/floor {vs_floor:.2f}, compiled/parsing floor {vs_parsing:.2f}, "
                  f"compiled/mlflow {vs_mlflow:.1f}x, compiled/sklearn "
                  f"{vs_sklearn:.1f}x, sklearn/mlflow {mine['rps'] / theirs['rps']:.1f}x")
        print(f"{'':>4}  {'ratios':<8}  {ratios}")
        failed += [f"{rows} rows: {goal}" for goal, met in checks.items() if not met]
    return failed


if __name__ == "__main__":
    main()
