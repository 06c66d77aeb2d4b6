"""SIGTERM stops `modelops score` as SIGINT does: no partial file, no scratch folder, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.batch.conftest import DIABETES, DIABETES_COLUMNS
from tests.runner.conftest import PYTHONPATH


def test_sigterm_while_scoring_leaves_no_partial_file_and_no_scratch(tmp_path: Path) -> None:
    rows = np.random.default_rng(5).uniform(-0.1, 0.2, size=(300_000, len(DIABETES_COLUMNS)))
    np.savetxt(tmp_path / "rows.csv", rows, fmt="%.6f", delimiter=",", header=",".join(DIABETES_COLUMNS),
               comments="")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "modelops", "score", str(DIABETES), "--input", "rows.csv", "--output", "scored.csv",
         "--rejects", "bad.jsonl", "--chunk-rows", "1000"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": PYTHONPATH, "TMPDIR": str(scratch)})
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".scored.csv.") and p.stat().st_size for p in tmp_path.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)  # rows are being written
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "tmp"]  # no output, no partial file
    assert list(scratch.iterdir()) == []  # no modelops-score-* folder
