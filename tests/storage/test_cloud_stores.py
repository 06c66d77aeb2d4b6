"""Version artifacts in Azure Blob Storage (Azurite) and Google Cloud Storage (gcp-storage-emulator), through the
real CLI: `validate` fetches and verifies them, `apply` registers them into an `mlflow server` whose artifacts live
in the same store, `serve models:/...` and the image context fetch them; a wrong digest, a missing object, bad
credentials and an unreachable endpoint each fail with one error naming the URI; downloads stream to disk and are
cached by digest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from modelops.artifacts import digest
from tests.processes import free_port
from tests.registry.helpers import Server, copy_model, run, score
from tests.runner.conftest import PYTHONPATH, ROOT, Servers
from tests.storage.azurite import Azurite
from tests.storage.gcs import GcsEmulator

STORES = {"azure": Azurite, "gcs": GcsEmulator}
ARTIFACT = ROOT / "models" / "diabetes" / "artifacts" / "1.0.0" / "model.skops"
SHA = digest(ARTIFACT)
KEY = "diabetes/1.0.0/model.skops"
LARGE = 200 << 20


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository (templates/ and models/) for the module's models, each test its own."""
    root = tmp_path_factory.mktemp("cloud-stores") / "repo"
    (root / "models").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    return root


def point(root: Path, name: str, uri: str, sha256: str = SHA) -> str:
    """The diabetes example copied as models/`name`, its version's artifact at `uri` (and only there)."""
    folder = copy_model(root, "diabetes", name)
    shutil.rmtree(folder / "artifacts" / "1.0.0")
    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("uri: artifacts/1.0.0/model.skops", f"uri: {uri}")
                        .replace(SHA, sha256))
    return f"models/{name}"


@pytest.fixture(scope="module", autouse=True)
def unreachable(repo: Path) -> Iterator[dict[str, tuple[int, subprocess.Popen]]]:
    """`modelops validate` of an artifact in each store, with the store's endpoint a closed port: started first
    and read by the module's last tests, since the clients retry for a minute or two before they give up."""
    started = {}
    for name, kind in STORES.items():
        model = point(repo, f"{name}-unreachable", kind.uri(KEY))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELOPS_"))}
        port = free_port()
        env.update(MODELOPS_ROOT=str(repo), MODELOPS_CACHE=str(repo.parent / f"cache-{name}-unreachable"),
                   **kind.unreachable(port))
        started[name] = port, subprocess.Popen([sys.executable, "-m", "modelops", "validate", model], cwd=repo,
                                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield started
    for _, process in started.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture(scope="module", params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite | GcsEmulator]:
    """The emulated store for the module, holding the diabetes artifact at KEY."""
    started = STORES[request.param](tmp_path_factory.mktemp(f"{request.param}-store"))
    started.put(KEY, ARTIFACT)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def mlflow_on_store(store: Azurite | GcsEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Server]]:
    """`mlflow server --artifacts-destination <the store>/mlflow`, started in the background as the module's
    first test runs (it takes a while): `.result()` waits for it."""
    work = tmp_path_factory.mktemp(f"mlflow-on-{store.name}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        server = pool.submit(Server, f"sqlite:///{work / 'mlflow.db'}", work, artifacts=store.uri("mlflow"),
                             env=store.env)
        yield server
        if not server.exception():
            server.result().stop()


def reference(inputs: list[dict]) -> list[float]:
    """The predictions of the diabetes artifact, loaded here from the repository's copy."""
    import pandas as pd
    import skops.io

    model = skops.io.load(ARTIFACT, trusted=skops.io.get_untrusted_types(file=ARTIFACT))
    return model.predict(pd.DataFrame(inputs).values).tolist()


def validate(root: Path, model: str, env: dict[str, str], cache: Path) -> subprocess.CompletedProcess:
    return run(root, "validate", model, check=None, env={**env, "MODELOPS_CACHE": str(cache)})


@pytest.mark.usefixtures("mlflow_on_store")  # starts while these validate
def test_validate_fetches_and_verifies_and_a_second_fetch_is_the_cache(store, repo: Path, tmp_path: Path) -> None:
    key = "cached/model.skops"
    store.put(key, ARTIFACT)
    model = point(repo, f"{store.name}-cached", store.uri(key))
    first = validate(repo, model, store.env, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "cache" / "artifacts" / SHA / "model.skops").read_bytes() == ARTIFACT.read_bytes()

    store.delete(key)  # the second fetch does not need the store: the cache holds those bytes
    again = validate(repo, model, store.env, tmp_path / "cache")
    assert again.returncode == 0, again.stderr


def test_a_missing_object_and_a_wrong_digest_name_the_uri(store, repo: Path, tmp_path: Path) -> None:
    missing = point(repo, f"{store.name}-missing", store.uri("missing/model.skops"))
    wrong = point(repo, f"{store.name}-wrong-digest", store.uri(KEY), sha256="ab" * 32)
    done = run(repo, "validate", missing, wrong, check=None, env={**store.env, "MODELOPS_CACHE": str(tmp_path)})
    assert done.returncode == 1
    assert f"versions[0].artifact.uri: cannot fetch '{store.uri('missing/model.skops')}': " in done.stderr
    assert {"azure": "No such file or directory", "gcs": "404 GET"}[store.name] in done.stderr
    assert (f"versions[0].artifact.sha256: sha256 mismatch: the artifact downloaded from '{store.uri(KEY)}' "
            f"has the digest {SHA}") in done.stderr
    assert not (tmp_path / "artifacts" / ("ab" * 32)).exists()  # nothing kept under a digest it does not have
    assert "Traceback" not in done.stderr


def test_bad_credentials_name_the_uri_and_where_credentials_come_from(store, repo: Path, tmp_path: Path) -> None:
    model = point(repo, f"{store.name}-bad-credentials", store.uri(KEY))
    done = validate(repo, model, store.bad_credentials(), tmp_path / "cache")
    assert done.returncode == 1
    refusal = {"azure": "HttpResponseError: Server failed to authenticate the request",
               "gcs": "DefaultCredentialsError: ('Failed to load service account credentials"}[store.name]
    assert f"versions[0].artifact.uri: cannot fetch '{store.uri(KEY)}': {refusal}" in done.stderr
    assert {"azure": "AZURE_STORAGE_CONNECTION_STRING", "gcs": "GOOGLE_APPLICATION_CREDENTIALS"}[store.name] \
        in done.stderr  # the hint
    assert "Traceback" not in done.stderr


def test_apply_registers_into_mlflow_on_the_store_and_serve_and_the_image_fetch_it(
        store, mlflow_on_store: Future[Server], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = mlflow_on_store.result()
    name = f"{store.name}-applied"
    model = point(repo, name, store.uri(KEY))
    env = {**store.env, "MODELOPS_CACHE": str(tmp_path / "apply-cache")}
    applied = run(repo, "apply", model, uri=server.uri, env=env)
    assert f"  + register {name} 1.0.0" in applied.stdout
    stored = store.keys("mlflow/")
    assert any(k.endswith("/model.skops") for k in stored), stored  # the registered files live in the store

    inputs = json.loads((repo / model / "example.json").read_text())["inputs"]
    predictions = score(server.uri, name, repo / model, monkeypatch)  # plain MLflow loads it back
    assert predictions == pytest.approx(reference(inputs))

    servers = Servers(tmp_path)
    try:
        client = servers.start(f"models:/{name}@production", env={"MLFLOW_TRACKING_URI": server.uri})
        answer = client.post("/invocations", json={"dataframe_records": inputs})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == pytest.approx(predictions)
    finally:
        servers.stop_all()

    out = tmp_path / "context"
    render = run(repo, "render", model, "--version", "1.0.0", "--out", str(out),
                 env={**store.env, "MODELOPS_CACHE": str(tmp_path / "render-cache")})
    assert render.returncode == 0, render.stderr
    assert (out / "model" / "artifacts" / "1.0.0" / "model.skops").read_bytes() == ARTIFACT.read_bytes()


def test_a_folder_artifact_is_every_object_under_its_prefix(store, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from modelops import artifacts

    folder = ROOT / "models" / "iris" / "artifacts" / "1.0.0"  # an MLflow model directory
    for path in sorted(folder.iterdir()):
        store.put(f"iris/1.0.0/{path.name}", path)
    for name, value in {**store.env, "MODELOPS_CACHE": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    fetched = artifacts.fetch(store.uri("iris/1.0.0"), tmp_path, digest(folder))
    assert sorted(p.name for p in fetched.iterdir()) == sorted(p.name for p in folder.iterdir())


FETCH_AND_MEASURE = """
import sys
from pathlib import Path

import mlflow.artifacts  # everything a fetch imports, before the measure starts
from mlflow.store.artifact import azure_blob_artifact_repo, gcs_artifact_repo
import azure.storage.blob, google.cloud.storage
from modelops import artifacts


def status(key):
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) * 1024


before = status("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
path = artifacts.fetch(sys.argv[1], Path.cwd(), sys.argv[2])
print(path.stat().st_size, status("VmHWM:") - before)
"""


def test_a_large_artifact_streams_to_disk(store, tmp_path: Path) -> None:
    large = tmp_path / "large.bin"
    with large.open("wb") as out:
        for _ in range(LARGE >> 20):
            out.write(os.urandom(1 << 20))
    sha256 = digest(large)
    store.put("large/large.bin", large)
    large.unlink()
    env = {**os.environ, **store.env, "PYTHONPATH": PYTHONPATH, "MODELOPS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", FETCH_AND_MEASURE, store.uri("large/large.bin"), sha256],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    size, growth = map(int, done.stdout.split()[-2:])
    assert size == LARGE
    assert growth < LARGE // 2, f"the fetch of {LARGE >> 20} MB grew the process by {growth >> 20} MB"
    store.delete("large/large.bin")
    shutil.rmtree(tmp_path / "cache")  # pytest keeps the temporary folders of the last runs


@pytest.mark.parametrize("name", sorted(STORES))
def test_an_unreachable_endpoint_fails_naming_the_uri_and_the_endpoint(
        name: str, unreachable: dict[str, tuple[int, subprocess.Popen]]) -> None:
    port, process = unreachable[name]
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, out + err
    assert f"versions[0].artifact.uri: cannot fetch '{STORES[name].uri(KEY)}': " in err
    assert f"host='127.0.0.1', port={port})" in err
    assert "Traceback" not in err
