"""Batch scoring speed and memory: `modelops score` of a 1,000,000-row CSV, scikit-learn and compiled.

Writes CSV files of the diabetes columns (rows drawn within the data set's ranges, fixed seed) with 1, 100,000
and 1,000,000 rows, scores each with `python -m modelops score` as a child process (models/diabetes, the
RandomForest with scikit-learn; and the same forest compiled to ONNX, as diabetes-compiled's image serves
it: the rendered context's model folder), and prints, per path, the rows/s on the 1M file (its time less
the 1-row file's: loading and start-up) and the peak resident memory of the child (its own rusage, from
os.wait4) at 100k and 1M rows. The goal: memory independent of the file's size (the 1M peak within 10 %
of the 100k one), since rows are read, checked, scored and written in chunks.

    python benchmarks/batch_score.py [--rows 1000000] [--small 100000] [--chunk-rows 10000]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
MEMORY_GOAL = 1.10  # the 1M-row peak at most 10 % above the 100k-row one


def write_rows(path: Path, rows: int) -> Path:
    """A CSV with a header and `rows` rows of the diabetes columns (scaled values, as the data set's)."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes().data
    low, high = data.min(axis=0), data.max(axis=0)
    generator = np.random.default_rng(7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for start in range(0, rows, 100_000):
            block = generator.uniform(low, high, size=(min(100_000, rows - start), len(COLUMNS)))
            writer.writerows(np.round(block, 6).tolist())
    return path


def compiled_model(folder: Path) -> Path:
    """The model folder of diabetes-compiled's image, rendered (the conversion is verified there)."""
    out = folder / "compiled-context"
    subprocess.run([sys.executable, "-m", "modelops", "render", str(ROOT / "models" / "diabetes-compiled"),
                    "--version", "1.0.0", "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    return out / "model"


def score(model: Path, source: Path, out: Path, chunk_rows: int) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of one `python -m modelops score` child process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "modelops", "score", str(model), "--version", "1.0.0",
                                "--input", str(source), "--output", str(out), "--chunk-rows", str(chunk_rows),
                                "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"score failed: {process.stderr.read().decode() if process.stderr else ''}")
    return seconds, usage.ru_maxrss * 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batch-score-") as tmp:
        folder = Path(tmp)
        files = {n: write_rows(folder / f"rows-{n}.csv", n) for n in (1, args.small, args.rows)}
        paths = {"scikit-learn": ROOT / "models" / "diabetes", "compiled (ONNX)": compiled_model(folder)}
        print(f"modelops score, diabetes RandomForest (100 trees), CSV in and out, chunks of {args.chunk_rows:,} rows")
        small, big = f"peak RSS {args.small:,} rows", f"peak RSS {args.rows:,} rows"
        print(f"{'path':<16} {f'rows/s ({args.rows:,})':>18} {'total s':>8} {small:>22} {big:>24} {'ratio':>6}")
        for name, model in paths.items():
            measured = {n: score(model, path, folder / f"out-{n}.csv", args.chunk_rows) for n, path in files.items()}
            (fixed, _), (_, small_peak), (total, big_peak) = (measured[1], measured[args.small], measured[args.rows])
            rate = args.rows / max(total - fixed, 1e-9)
            ratio = big_peak / small_peak
            verdict = "ok" if ratio <= MEMORY_GOAL else "MISSED"
            print(f"{name:<16} {rate:>18,.0f} {total:>8.1f} {small_peak / 2**20:>18.0f} MiB "
                  f"{big_peak / 2**20:>20.0f} MiB {ratio:>6.2f}  {verdict} (goal <= {MEMORY_GOAL})")


if __name__ == "__main__":
    main()
