"""The runner against its peers, same model, same machine, same load: `modelops serve`, `mlflow models serve`
and MLServer (its scikit-learn runtime, with its defaults and with adaptive batching).

All serve models/diabetes (RandomForestRegressor, 100 trees, the .skops artifact): modelops from the model
folder, MLflow from an MLflow model directory of the same forest, MLServer from a `model.joblib` of it (its
scikit-learn runtime loads joblib files). A do-nothing FastAPI endpoint under the runner's uvicorn settings is
the HTTP floor; one that only parses the body into an array (orjson, numpy) and answers zeros is the parsing
floor: a cell whose 85 % of c / t is above it is out of reach for any server here. MLServer runs with its
defaults (one parallel inference worker process beside the HTTP one, access log on, metrics server on) bound to
127.0.0.1 on free ports; "MLServer batching" adds adaptive batching (max_batch_size 32, max_batch_time 2 ms).
MLServer lives in its own venv, `.venv-peers`, made on first use from `benchmarks/peers-requirements.txt` (its
pins conflict with the project's).

Every server is started, and the 100-row answers of all must agree within 1e-9 (and with the forest
in-process) before anything is measured. Then wrk drives each with 1-row and 100-row bodies at 8 and 32
connections, servers in order and then in the opposite order (all servers stay up, idle but one); the better
of the two runs (by requests/s) is reported beside both runs' rates. MLflow, modelops and the floor get
`/invocations` `dataframe_split` bodies; MLServer gets its v2 endpoint with one [N, 10] FP64 tensor; modelops
is also driven on its own v2 endpoint (one FP64 tensor per column), v2 against v2. Printed per cell:
requests/s, p50, p99, CPU milliseconds per request (the server's process tree, from /proc), the ratios
modelops/each peer, and the concurrency bound c / t (t: the forest's own predict time for the body's rows,
the shortest of 50 in this process) with modelops' fraction of it; beside it, t and c / t of the forest as
the runner loads it (modelops.flavors, which may answer faster than the forest's predict), and the compute
bound: what every CPU of this machine could score of that forest, in one batch of every connection's rows and
nothing else (a cell whose 85 % of c / t is above it is out of reach here). The goals are checked for both
of modelops' endpoints; the script exits 1 when one is missed.

    python benchmarks/runner_vs_peers.py [--duration 15] [--quick] [--servers modelops,mlserver-batching]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))  # this tree's modelops

from benchmarks.load import drive, post, server  # noqa: E402
from benchmarks.runner_vs_mlflow import FLOOR_APP, MODEL, mlflow_model_dir  # noqa: E402
from tests.processes import free_port  # noqa: E402

ARTIFACT = MODEL / "artifacts" / "1.0.0" / "model.skops"
PEERS_VENV = ROOT / ".venv-peers"
PEERS_REQUIREMENTS = ROOT / "benchmarks" / "peers-requirements.txt"
V2_PATH = "/v2/models/diabetes/infer"
CELLS = [(1, 8), (1, 32), (100, 8), (100, 32)]  # (rows per request, connections)
BATCHING = {"max_batch_size": 32, "max_batch_time": 0.002}
# modelops' requests/s over each peer's, in every cell (and a lower p99 than MLServer batching's).
GOALS = {"mlserver-batching": 2.0, "mlserver": 10.0, "mlflow": 10.0}
BOUND_GOAL = 0.85  # of c / t, the scikit-learn path


@dataclass(frozen=True)
class Target:
    """One server's endpoint under load: its column's title, the server it runs on, the path, the body kind."""

    title: str
    server: str
    path: str
    body: str  # "split" (dataframe_split), "columns" (v2, a tensor per column) or "tensor" (v2, one [N, 10])


TARGETS = {
    "mlflow": Target("mlflow models serve", "mlflow", "/invocations", "split"),
    "modelops": Target("modelops", "modelops", "/invocations", "split"),
    "modelops-v2": Target("modelops v2", "modelops", V2_PATH, "columns"),
    "mlserver": Target("MLServer", "mlserver", V2_PATH, "tensor"),
    "mlserver-batching": Target("MLServer batching", "mlserver-batching", V2_PATH, "tensor"),
    "floor": Target("FastAPI floor", "floor", "/invocations", "split"),
    "floor-array": Target("FastAPI parsing", "floor-array", "/invocations", "split"),
}
FLOORS = ("floor", "floor-array")
OURS = ("modelops", "modelops-v2")


def forest():
    """The RandomForestRegressor of the .skops artifact."""
    import skops.io

    return skops.io.load(ARTIFACT, trusted=skops.io.get_untrusted_types(file=ARTIFACT))


def served():
    """The forest as `modelops serve` loads it (the same answers, perhaps by a faster path than its own predict)."""
    from modelops import flavors

    return flavors.load("sklearn", ARTIFACT, [])


def features():
    """The diabetes data set's feature frame."""
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).data


def make_body(kind: str, rows: int) -> str:
    """A request body of the first `rows` rows of the diabetes data, in one of the three forms."""
    data = features().iloc[:rows]
    if kind == "split":
        return json.dumps({"dataframe_split": {"columns": list(data.columns), "data": data.values.tolist()}})
    if kind == "columns":
        return json.dumps({"inputs": [{"name": c, "shape": [rows], "datatype": "FP64", "data": data[c].tolist()}
                                      for c in data.columns]})
    return json.dumps({"inputs": [{"name": "input-0", "shape": [rows, data.shape[1]], "datatype": "FP64",
                                   "data": data.values.reshape(-1).tolist()}]})


def predictions(answer: dict) -> list[float]:
    """The predictions of an /invocations or a v2 answer."""
    return answer["predictions"] if "predictions" in answer else answer["outputs"][0]["data"]


def predict_seconds(model, rows: int, repeats: int, x: np.ndarray | None = None) -> float:
    """The shortest time of `model.predict` on `rows` rows (of the data set, or `x`), in this process (the least
    a busy machine adds)."""
    x = features().values[:rows] if x is None else x
    for _ in range(3):
        model.predict(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x)
        times.append(time.perf_counter() - start)
    return min(times)


def compute_bound(model, rows: int, connections: int) -> float:
    """Requests/s of `rows` rows that this machine's CPUs could score at the most, were each spent on nothing but
    `model.predict` of one batch of every connection's rows (its best per-row rate; no HTTP, no parsing)."""
    from modelops.runner import cpus

    batch = rows * connections
    x = np.resize(features().values, (batch, features().shape[1]))
    return cpus.available() / (predict_seconds(model, batch, 5, x) / batch) / rows


def peers_python() -> Path:
    """The python of `.venv-peers`, made (again) when it is missing or its requirements changed."""
    stamp = PEERS_VENV / "peers-requirements.txt"
    if stamp.exists() and stamp.read_text() == PEERS_REQUIREMENTS.read_text():
        return PEERS_VENV / "bin" / "python"
    print(f"making {PEERS_VENV.name} from {PEERS_REQUIREMENTS.relative_to(ROOT)} (once)", file=sys.stderr, flush=True)
    shutil.rmtree(PEERS_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(PEERS_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)], check=True)
    shutil.copyfile(PEERS_REQUIREMENTS, stamp)  # last: a venv without it is made again
    return PEERS_VENV / "bin" / "python"


def mlserver_folder(folder: Path, joblib_file: Path, name: str, port: int, batching: bool) -> Path:
    """An MLServer folder (settings.json, diabetes/model-settings.json, the model) bound to 127.0.0.1:`port`."""
    root = folder / name
    (root / "diabetes").mkdir(parents=True)
    shutil.copyfile(joblib_file, root / "diabetes" / "model.joblib")
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "metrics_dir": str(root / ".metrics"), "environments_dir": str(root / ".envs")}
    model = {"name": "diabetes", "implementation": "mlserver_sklearn.SKLearnModel",
             "parameters": {"uri": "./model.joblib", "version": "1.0.0"}, **(BATCHING if batching else {})}
    (root / "settings.json").write_text(json.dumps(settings))
    (root / "diabetes" / "model-settings.json").write_text(json.dumps(model))
    return root


# A port -> the command that serves on it, its readiness path, the variables it needs beside ours.
Start = Callable[[int], tuple[list[str], str, dict[str, str]]]


def commands(folder: Path, needed: set[str]) -> dict[str, Start]:
    """For each server needed, how to start it."""
    made: dict[str, Start] = {}
    if "mlflow" in needed:
        model_dir, mlflow = mlflow_model_dir(folder), str(Path(sys.executable).parent / "mlflow")
        made["mlflow"] = lambda port: ([mlflow, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                                        "-h", "127.0.0.1", "-p", str(port)], "/ping", {})
    if "modelops" in needed:
        made["modelops"] = lambda port: ([sys.executable, "-m", "modelops", "serve", str(MODEL), "--env",
                                          "production", "--port", str(port)], "/ping",
                                         {"PYTHONPATH": str(ROOT / "scripts")})  # this tree's modelops
    if needed & {"mlserver", "mlserver-batching"}:
        import joblib

        mlserver, joblib_file = peers_python().parent / "mlserver", folder / "model.joblib"
        joblib.dump(forest(), joblib_file)
        for name in needed & {"mlserver", "mlserver-batching"}:
            made[name] = lambda port, name=name: (
                [str(mlserver), "start",
                 str(mlserver_folder(folder, joblib_file, name, port, name == "mlserver-batching"))],
                "/v2/health/ready", {})
    if "floor" in needed:
        made["floor"] = lambda port: ([sys.executable, "-c", FLOOR_APP, str(port)], "/ping", {})
    if "floor-array" in needed:
        made["floor-array"] = lambda port: ([sys.executable, "-c", FLOOR_APP, str(port), "--array"], "/ping", {})
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per server and cell")
    parser.add_argument("--quick", action="store_true", help="2 s per cell, to check that it works")
    parser.add_argument("--servers", default=",".join(TARGETS),
                        help=f"a subset of {','.join(TARGETS)} (default: all)")
    args = parser.parse_args()
    picked = [key.strip() for key in args.servers.split(",") if key.strip()]
    unknown = [key for key in picked if key not in TARGETS]
    if unknown or not picked:
        raise SystemExit(f"--servers: unknown {', '.join(unknown) or '(none given)'}; pick from {', '.join(TARGETS)}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: ./scripts/setup.sh --system installs it")
    duration, warm = (2, 1) if args.quick else (args.duration, 2)
    targets = [key for key in TARGETS if key in picked]
    model = forest()
    predict_s = {rows: predict_seconds(model, rows, 10 if args.quick else 50) for rows in (1, 100)}
    served_s = {rows: predict_seconds(served(), rows, 10 if args.quick else 50) for rows in (1, 100)}
    capacity = {cell: compute_bound(served(), *cell) for cell in CELLS}
    expected = model.predict(features().values[:100]).tolist()
    runs: dict[str, dict[tuple[int, int], list[dict]]] = {key: {cell: [] for cell in CELLS} for key in targets}
    with tempfile.TemporaryDirectory(prefix="runner-peers-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        starts = commands(folder, {TARGETS[key].server for key in targets})
        ports, pids = {}, {}
        for name, start in starts.items():
            ports[name] = port = free_port()
            command, ready, env = start(port)
            print(f"{name}: starting", file=sys.stderr, flush=True)
            pids[name] = stack.enter_context(server(command, port, folder / f"{name}.log", env, ready)).pid
        check_predictions(targets, ports, expected)
        for turn, order in enumerate((targets, targets[::-1]), start=1):
            for key in order:
                target = TARGETS[key]
                for rows, connections in CELLS:
                    print(f"run {turn}: {target.title}: {rows}-row bodies, {duration}s at {connections} connections",
                          file=sys.stderr, flush=True)
                    runs[key][rows, connections].append(
                        drive(ports[target.server], make_body(target.body, rows), duration, connections, folder,
                              path=target.path, pid=pids[target.server], warm=warm))
    failed = report(runs, predict_s, served_s, capacity, duration)
    sys.exit(1 if failed else 0)


def check_predictions(targets: list[str], ports: dict[str, int], expected: list[float]) -> None:
    """Every target's 100-row answer within 1e-9 of every other's and of the forest's own; else exit 1."""
    answers = {key: predictions(post(ports[TARGETS[key].server], TARGETS[key].path,
                                     make_body(TARGETS[key].body, 100)))
               for key in targets if key not in FLOORS}
    answers["in-process forest"] = expected
    worst = max((abs(a - b) for one in answers.values() for other in answers.values()
                 for a, b in zip(one, other, strict=True)), default=0.0)
    print(f"same predictions (100 rows, {', '.join(answers)}): largest difference {worst:.3g}", flush=True)
    if worst > 1e-9:
        raise SystemExit("the servers' predictions differ by more than 1e-9: nothing measured")


def report(runs: dict[str, dict[tuple[int, int], list[dict]]], predict_s: dict[int, float],
           served_s: dict[int, float], capacity: dict[tuple[int, int], float], duration: int) -> list[str]:
    """Print the table of each cell (the better run of two) and the goals; the goals not met. The bound c / t
    takes t of the forest's own predict (the goal's); the forest as the runner loads it is shown beside, and
    what this machine's CPUs could score of it at the most (`capacity`)."""
    keys = list(runs)
    best = {key: {cell: max(runs[key][cell], key=lambda r: r["rps"]) for cell in CELLS} for key in keys}
    width = max(19, *(len(TARGETS[key].title) + 2 for key in keys))
    print(f"\nRandomForestRegressor (100 trees), wrk -t2 -d{duration}s per cell, each server run twice (in order, "
          "then in the opposite order): the better run by req/s, both runs' req/s shown")
    header = f"{'':<18}" + "".join(f"{TARGETS[key].title:>{width}}" for key in keys)
    for cell in CELLS:
        rows, connections = cell
        print(f"\n{_cell(cell)}\n{header}\n{'-' * len(header)}")
        lines = {"req/s runs": [" / ".join(f"{r['rps']:.0f}" for r in runs[k][cell]) for k in keys],
                 "req/s": [f"{best[k][cell]['rps']:.1f}" for k in keys],
                 "p50 ms": [f"{best[k][cell]['p50']:.1f}" for k in keys],
                 "p99 ms": [f"{best[k][cell]['p99']:.1f}" for k in keys],
                 "CPU ms/request": [f"{best[k][cell]['cpu_ms']:.2f}" for k in keys],
                 "errors": [str(best[k][cell]["errors"]) for k in keys]}
        for label, values in lines.items():
            print(f"{label:<18}" + "".join(f"{value:>{width}}" for value in values))
        bound, served_bound = connections / predict_s[rows], connections / served_s[rows]
        beyond = "floor" in best and bound > best["floor"][cell]["rps"]
        print(f"bound c/t: {connections} / {1000 * predict_s[rows]:.2f} ms = {bound:.0f} req/s (t: the forest's "
              f"predict; as the runner loads it: {1000 * served_s[rows]:.2f} ms, {served_bound:.0f} req/s)"
              + ("; above the HTTP floor: out of reach" if beyond else ""))
        if parsing := unreachable(best, predict_s, cell):
            print(f"{BOUND_GOAL:.0%} of c/t is above the {parsing:.0f} req/s of an endpoint that only parses the "
                  "body into an array and answers zeros: out of reach for any server on this machine")
        print(f"compute bound: {capacity[cell]:.0f} req/s (every CPU scoring the loaded forest in batches of "
              f"{rows * connections} rows, nothing else)"
              + (f"; {BOUND_GOAL:.0%} of c/t is above it: out of reach on this machine"
                 if BOUND_GOAL * bound > capacity[cell] else ""))
        for ours in (key for key in OURS if key in best):
            mine = best[ours][cell]["rps"]
            ratios = ", ".join(f"{TARGETS[k].title} {mine / best[k][cell]['rps']:.2f}x" for k in keys if k != ours)
            print(f"{TARGETS[ours].title}: {mine / bound:.0%} of the bound ({mine / served_bound:.0%} of the loaded "
                  f"forest's); over {ratios or 'no peer'}")
    return goals(best, predict_s)


def unreachable(best: dict[str, dict[tuple[int, int], dict]], predict_s: dict[int, float],
                cell: tuple[int, int]) -> float | None:
    """The parsing floor's req/s in `cell` when the c/t goal is above it (no server can reach it then), else None."""
    parsing = best.get("floor-array", {}).get(cell, {}).get("rps")
    return parsing if parsing and BOUND_GOAL * cell[1] / predict_s[cell[0]] > parsing else None


def goals(best: dict[str, dict[tuple[int, int], dict]], predict_s: dict[int, float]) -> list[str]:
    """Print each goal of each of modelops' endpoints, cell by cell, met or not; the goals not met."""
    checks: dict[str, Callable[[dict, tuple[int, int]], tuple[str, bool]]] = {
        f">= {BOUND_GOAL:.0%} of c/t": lambda mine, cell: (
            f"{mine['rps'] * predict_s[cell[0]] / cell[1]:.0%}" + (" (out of reach)" if unreachable(
                best, predict_s, cell) else ""), mine["rps"] * predict_s[cell[0]] / cell[1] >= BOUND_GOAL),
        "no errors": lambda mine, cell: (str(mine["errors"]), not mine["errors"]),
    }
    for peer, goal in GOALS.items():
        if peer in best:
            checks[f">= {goal:.0f}x {TARGETS[peer].title}"] = lambda mine, cell, peer=peer, goal=goal: (
                f"{mine['rps'] / best[peer][cell]['rps']:.2f}x", mine["rps"] >= goal * best[peer][cell]["rps"])
    if "mlserver-batching" in best:
        checks["p99 < MLServer batching's"] = lambda mine, cell: (
            f"{mine['p99']:.0f}/{best['mlserver-batching'][cell]['p99']:.0f} ms",
            mine["p99"] < best["mlserver-batching"][cell]["p99"])
    failed: list[str] = []
    if not any(key in best for key in OURS):
        print("\nno goal checked: neither modelops nor modelops-v2 among --servers")
        return failed
    print(f"\n{'goals':<34}" + "".join(f"{f'{cell[0]} rows, c={cell[1]}':>30}" for cell in CELLS))
    for ours in (key for key in OURS if key in best):
        for name, check in checks.items():
            results = [check(best[ours][cell], cell) for cell in CELLS]
            print(f"{TARGETS[ours].title + ' ' + name:<34}"
                  + "".join(f"{value + (' met' if met else ' NOT met'):>30}" for value, met in results))
            failed += [f"{_cell(cell)}: {TARGETS[ours].title} {name} ({value})"
                       for cell, (value, met) in zip(CELLS, results, strict=True) if not met]
    print("\ngoals met" if not failed else f"\ngoals NOT met ({len(failed)}):\n  " + "\n  ".join(failed))
    return failed


def _cell(cell: tuple[int, int]) -> str:
    return f"{cell[0]} row{'s' if cell[0] > 1 else ''}, {cell[1]} connections"


if __name__ == "__main__":
    main()
