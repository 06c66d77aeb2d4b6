"""The served process's garbage collector: what start-up made is frozen once every version is loaded, before
the server says it is ready, so that the full collections to come walk only what requests leave behind."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.runner.conftest import PYTHONPATH, ROOT

CHILD = """
import gc, json, sys
from fastapi.testclient import TestClient
from modelops.runner import collector, serve
from modelops.runner.app import create_app
from modelops.runner.loading import resolve
from modelops.runner.runtime import RunnerSettings

app = serve._collected(create_app(resolve(sys.argv[1], "production", None), RunnerSettings()))
seen = []
app.state.runtime.on_ready.append(lambda: seen.append(app.state.runtime.ready))
body = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                            "data": [[5.1, 3.5, 1.4, 0.2]]}}
with TestClient(app) as client:
    while not client.get("/ready").json()["ready"]:
        pass
    frozen = gc.get_freeze_count()
    answers = {client.post("/invocations", json=body).status_code for _ in range(300)}
    print(json.dumps({"frozen": frozen, "tracked": len(gc.get_objects()), "threshold": gc.get_threshold()[0],
                      "young": collector.YOUNG_THRESHOLD, "ready_when_settled": seen, "answers": sorted(answers)}))
"""


def test_start_up_objects_are_frozen_before_ready_and_the_young_are_collected_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "models" / "iris")], capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin",
                                                      "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["answers"] == [200]
    assert found["ready_when_settled"] == [False]  # the one full collection ran before any request was let in
    assert found["frozen"] > 50_000  # the frameworks, the loaded versions, the app
    assert found["tracked"] < found["frozen"] / 5  # what a full collection still walks after 300 requests
    assert found["threshold"] == found["young"] > 700
