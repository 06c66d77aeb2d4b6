"""S3 fixtures: moto's standalone S3 API server in a child process on 127.0.0.1, reached over HTTP and
configured exactly as MinIO users configure MinIO (`MLFLOW_S3_ENDPOINT_URL`, an access key pair, a region),
and an `mlflow server` whose artifacts destination is a bucket there.

The fixture creates an IAM user allowed `s3:*` and its access key, which the tests use; within
`S3Server.checking_keys()` moto checks each request's key, and refuses a wrong one as a real store does. Only
there: moto cannot check the query-string signature of a presigned URL, which an `mlflow server` on S3 hands
its clients for downloads.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.artifacts import digest
from tests.conftest import ROOT
from tests.images.conftest import base_image, docker_client  # noqa: F401  (fixtures shared with tests/images)
from tests.processes import answers, free_port, stop_group
from tests.registry.helpers import Server, copy_model, missing_service

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
BUCKET = "models"
REGION = "us-east-1"
IRIS = ROOT / "models" / "iris"
EXAMPLE = json.loads((IRIS / "example.json").read_text())["inputs"]
# An `mlflow server` for the registry and its artifacts needs no job runner (seven more processes, slow to stop).
NO_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


class S3Server:
    """A running moto S3 server we started (its requests logged to `log`), stopped by its fixture."""

    def __init__(self, work: Path) -> None:
        if not MOTO_SERVER.is_file():
            missing_service(f"moto's server is not installed ({MOTO_SERVER}): pip install 'moto[server]'")
        port = free_port()
        self.endpoint, self.log = f"http://127.0.0.1:{port}", work / "moto.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait()
        key = self._account()
        self.env = {"MLFLOW_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_DEFAULT_REGION": REGION}

    def _wait(self) -> None:
        if answers(f"{self.endpoint}/moto-api/data.json", self.process, 60):
            return
        self.stop()
        missing_service(f"moto_server did not start: {self.log.read_text()[-500:]}")

    def _account(self) -> dict:
        """The bucket, and a user's access key."""
        import boto3

        anyone = {"endpoint_url": self.endpoint, "region_name": REGION, "aws_access_key_id": "setup",
                  "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="modelops")
        iam.put_user_policy(UserName="modelops", PolicyName="s3", PolicyDocument=json.dumps(_POLICY))
        key = iam.create_access_key(UserName="modelops")["AccessKey"]
        boto3.client("s3", **anyone).create_bucket(Bucket=BUCKET)
        return key

    @contextlib.contextmanager
    def checking_keys(self) -> Iterator[None]:
        """Within, every request's access key and signature are checked."""
        self._free_requests(b"0")
        try:
            yield
        finally:
            self._free_requests(b"inf")

    def _free_requests(self, count: bytes) -> None:
        """moto's count of requests let through unchecked, from now on."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=count, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def client(self):  # -> botocore S3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def upload(self, local: Path, key: str) -> str:
        """Put a file at `key`, or a folder's files under `key/`; the s3:// URI (a folder's ends with /)."""
        client = self.client()
        if local.is_file():
            client.upload_file(str(local), BUCKET, key)
            return f"s3://{BUCKET}/{key}"
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            client.upload_file(str(path), BUCKET, f"{key}/{path.relative_to(local).as_posix()}")
        return f"s3://{BUCKET}/{key}/"

    def keys(self, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def requests_naming(self, key: str) -> int:
        """How many requests the server has logged whose line names `key` (an object or a listing of it)."""
        return sum(key in line for line in self.log.read_text(errors="replace").splitlines()
                   if '"GET ' in line or '"HEAD ' in line)

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_group(self.process)


def iris_repo(root: Path, uris: dict[str, tuple[str, str]]) -> Path:
    """A repository holding models/iris whose versions in `uris` ({version: (uri, sha256)}) point there; their
    local copies are removed (and the signature of one that is now a single file)."""
    (root / "models").mkdir(parents=True)
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "keys", root / "keys")
    shutil.copytree(ROOT / "templates", root / "templates")
    folder = copy_model(root, "iris")
    manifest = folder / "model.yaml"
    text = manifest.read_text()
    for version, (uri, sha256) in uris.items():
        old = f"uri: artifacts/{version}/\n      sha256: {digest(IRIS / 'artifacts' / version)}\n"
        assert old in text
        text = text.replace(old, f"uri: {uri}\n      sha256: {sha256}\n")
        shutil.rmtree(folder / "artifacts" / version)
        if not uri.endswith("/"):
            (folder / "artifacts" / f"{version}.sig").unlink()
    manifest.write_text(text)
    return root


@pytest.fixture(scope="session")
def on_s3(s3: S3Server) -> dict[str, tuple[str, str]]:
    """iris 1.0.0 as a folder and 1.1.0 as a single file (its pickle) in the bucket: {version: (uri, sha256)}."""
    single = IRIS / "artifacts" / "1.1.0" / "model.pkl"
    return {"1.0.0": (s3.upload(IRIS / "artifacts" / "1.0.0", "flow/iris/1.0.0"), digest(IRIS / "artifacts" / "1.0.0")),
            "1.1.0": (s3.upload(single, "flow/iris/1.1.0/model.pkl"), digest(single))}


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server for the session, with the bucket `models`; tests use their own keys in it."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mlflow_on_s3(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlflow server --artifacts-destination s3://models/mlflow --serve-artifacts` (SQLite backend)."""
    work = tmp_path_factory.mktemp("mlflow-on-s3")
    server = Server(f"sqlite:///{work / 'mlflow.db'}", work, artifacts=f"s3://{BUCKET}/mlflow",
                    env={**s3.env, **NO_JOBS})
    yield server
    server.stop()
