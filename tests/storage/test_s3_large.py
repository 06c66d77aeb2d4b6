"""A large artifact on S3 streams to disk (the fetching process's memory does not grow with it), and a second
fetch is served from the cache by its digest without a request to the store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.conftest import PYTHONPATH
from tests.storage.conftest import BUCKET, S3Server

MIB = 1 << 20
SIZE = 320 * MIB
KEY = "large/model.bin"
# Run in a child process: its peak RSS after the imports the fetch needs, and after the fetch.
FETCH = """
import json, resource, sys
from pathlib import Path

import boto3, mlflow.artifacts, mlflow.store.artifact.s3_artifact_repo
from modelops import artifacts

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path = artifacts.fetch(sys.argv[1], Path.cwd(), sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"path": str(path), "grew": (after - before) * 1024}))
"""


@pytest.fixture(scope="module")
def large(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A SIZE-byte object in the bucket (distinct 1 MiB blocks) and its sha256; removed afterwards."""
    local = tmp_path_factory.mktemp("large") / "model.bin"
    block, digest = os.urandom(MIB - 4), hashlib.sha256()
    with local.open("wb") as out:
        for i in range(SIZE // MIB):
            chunk = block + i.to_bytes(4, "big")
            out.write(chunk)
            digest.update(chunk)
    uri = s3.upload(local, KEY)
    local.unlink()
    yield uri, digest.hexdigest()
    s3.client().delete_object(Bucket=BUCKET, Key=KEY)


def _fetch(s3: S3Server, uri: str, sha256: str, cache: Path) -> dict:
    env = {**os.environ, **s3.env, "MODELOPS_CACHE": str(cache), "PYTHONPATH": PYTHONPATH}
    done = subprocess.run([sys.executable, "-c", FETCH, uri, sha256], cwd=cache.parent, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_large_artifact_streams_to_disk_and_is_then_served_from_the_cache(large: tuple[str, str], s3: S3Server,
                                                                           tmp_path: Path) -> None:
    uri, sha256 = large
    cache = tmp_path / "cache"
    first = _fetch(s3, uri, sha256, cache)
    kept = Path(first["path"])
    assert kept == cache / "artifacts" / sha256 / "model.bin" and kept.stat().st_size == SIZE
    # streamed: the transfer's buffers, not the artifact, in memory (about 80 MiB for 320 MiB here)
    assert first["grew"] < SIZE / 2.5, f"the fetch grew by {first['grew'] / MIB:.0f} MiB for {SIZE // MIB} MiB"

    asked = s3.requests_naming(KEY)
    assert asked > 0
    second = _fetch(s3, uri, sha256, cache)
    assert second["path"] == first["path"]
    assert s3.requests_naming(KEY) == asked  # from the cache, by digest: the store was not asked again
