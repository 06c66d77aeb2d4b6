"""Fixtures for `modelops scan`: a local safety database, an OSV endpoint, model repositories in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.version import Version

HERE = Path(__file__).parent
PROJECT = HERE.parent.parent
SAFETY_DB = HERE / "safety-db"  # flags jinja2<3.1.3 (64227, medium) and pyyaml<5.4 (39611, critical)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A models repository holding a copy of models/iris (its requirements are clean)."""
    shutil.copytree(PROJECT / "models" / "iris", tmp_path / "models" / "iris")
    return tmp_path


def add_requirements(repo: Path, *lines: str) -> None:
    """Append requirement lines to the iris copy in `repo`."""
    path = repo / "models" / "iris" / "requirements.txt"
    path.write_text(path.read_text() + "".join(f"{line}\n" for line in lines))


@pytest.fixture
def modelops(repo: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real CLI in a child process, in `repo`, with no scan settings from the environment."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "SAFETY_"))} | (env or {})
        env["MODELOPS_ROOT"] = str(repo)
        return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    return run


def _affected(record: dict, name: str, version: Version) -> bool:
    for affected in record["affected"]:
        if affected["package"]["name"] != name:
            continue
        for r in affected["ranges"]:
            events = r["events"]
            low = Version(next(e["introduced"] for e in events if "introduced" in e))
            fixed = next((Version(e["fixed"]) for e in events if "fixed" in e), None)
            if low <= version and (fixed is None or version < fixed):
                return True
    return False


class _OSVQuery(BaseHTTPRequestHandler):
    """POST /v1/query as api.osv.dev answers it, from the records in osv-records.json."""

    records = json.loads((HERE / "osv-records.json").read_text())

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = query["package"]["name"], Version(query["version"])
        vulns = [r for r in self.records if _affected(r, name, version)]
        body = json.dumps({"vulns": vulns} if vulns else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def osv_url() -> Iterator[str]:
    """An OSV query endpoint on 127.0.0.1 (a mirror, as an air-gapped site would run)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OSVQuery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()
    server.server_close()


@pytest.fixture
def environment(tmp_path):
    """A venv where Jinja2 3.1.2 and PyYAML 6.0.1 are installed (their metadata; the scan reads only that)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert purelib.startswith(str(venv)) and sysconfig.get_paths()["purelib"] != purelib
    for name, version in (("Jinja2", "3.1.2"), ("PyYAML", "6.0.1")):
        info = venv / purelib / f"{name.lower()}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return python


def flagging(db: Path, name: str, version: str) -> Path:
    """A copy of the test safety database that also flags `name` below the version after `version`."""
    shutil.copytree(SAFETY_DB, db)
    fixed = version.rsplit(".", 1)[0] + "." + str(int(version.rsplit(".", 1)[1]) + 1)
    index, full = (json.loads((db / f).read_text()) for f in ("insecure.json", "insecure_full.json"))
    index["vulnerable_packages"][name] = [f"<{fixed}"]
    full["vulnerable_packages"][name] = [{
        "specs": [f"<{fixed}"], "ids": [{"type": "pyup", "id": "99001"}],
        "advisory": f"{name} before {fixed}: a test advisory.", "fixed_versions": [fixed],
        "affected_versions": [version], "more_info_path": "/v/99001/0",
        "transitive": False, "published_date": "2026-01-01"}]
    (db / "insecure.json").write_text(json.dumps(index))
    (db / "insecure_full.json").write_text(json.dumps(full))
    return db
