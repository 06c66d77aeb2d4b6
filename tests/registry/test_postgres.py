"""The production shape: `mlflow server` backed by PostgreSQL (a throwaway cluster on 127.0.0.1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.helpers import Server, free_port, missing_service, run, score

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary folder owned by `postgres`, on a free port; its database URI."""
    if not (PG_BIN / "initdb").is_file() or shutil.which("runuser") is None:
        missing_service(f"PostgreSQL is not installed ({PG_BIN}): apt-get install postgresql")
    data = Path(tempfile.mkdtemp(prefix="modelops-pg-"))
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    try:
        init = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
        if init.returncode != 0:
            missing_service(f"initdb failed: {init.stderr[-500:]}")
        started = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w",
                               "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
        if started.returncode != 0:
            missing_service(f"PostgreSQL did not start: {started.stderr[-500:]}")
        _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_apply_against_mlflow_server_on_postgresql(make_repo, postgres: str, tmp_path: Path, monkeypatch) -> None:
    server = Server(postgres, tmp_path)
    try:
        root = make_repo()
        run(root, "apply", uri=server.uri)
        assert run(root, "apply", uri=server.uri).stdout == f"nothing to do: the registry at {server.uri} matches git\n"
        plan = json.loads(run(root, "plan", "--format", "json", uri=server.uri).stdout)
        assert plan == {"actions": [], "drift": [], "notes": []}
        assert score(server.uri, "iris", root / "models/iris", monkeypatch) == [0, 1, 2]
    finally:
        server.stop()
