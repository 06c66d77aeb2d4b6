"""Real services for the image tests and benchmarks: a Docker engine, a local base image, registries.

`engine()` uses a running engine (DOCKER_HOST or the default socket) or starts
`dockerd --iptables=false --ip6tables=false --bridge=none` (no bridge here: containers use the host
network). `base_image()` builds a Debian Python base without any hub (scripts/ci/base-image.sh).
`Registry` runs Debian's `docker-registry` on a free 127.0.0.1 port, optionally behind htpasswd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
BASE_TAG = "modelops-base/python:3.11-bookworm-omp"


class Unavailable(Exception):
    """A service cannot run on this machine (the reason is the message)."""


def _answers() -> bool:
    import docker

    try:
        docker.from_env(timeout=5).ping()
        return True
    except docker.errors.DockerException:
        return False


def engine() -> subprocess.Popen | None:
    """Make sure a Docker engine answers; returns the dockerd process when this call started it."""
    if _answers():
        return None
    if os.environ.get("DOCKER_HOST"):
        raise Unavailable(f"no Docker engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}")
    if shutil.which("dockerd") is None:
        raise Unavailable("dockerd is not installed (scripts/setup.sh --system installs docker.io)")
    if os.geteuid() != 0:
        raise Unavailable("dockerd needs root here")
    log = open(Path(tempfile.gettempdir()) / f"modelops-dockerd-{os.getpid()}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"dockerd exited with {process.returncode}; see {log.name}")
        if _answers():
            return process
        time.sleep(0.5)
    stop(process)
    raise Unavailable(f"dockerd did not answer within 60 s; see {log.name}")


def with_engine(work: Callable[[], None]) -> None:
    """Run `work` with a Docker engine; one this call had to start is stopped afterwards."""
    started = engine()
    try:
        work()
    finally:
        if started is not None:
            stop(started)


def stop(process: subprocess.Popen) -> None:
    """Stop a process this harness started (by its own pid only)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def remove_image(client, ref: str) -> None:  # client: docker.DockerClient
    """Delete the image `ref` (every tag of it), but not its untagged parents: they are the legacy builder's
    layer cache, which the next test's build of the same requirements reuses instead of reinstalling them."""
    client.images.remove(ref, force=True, noprune=True)


def base_image() -> str:
    """The local Python base image (built once with debootstrap, then kept by tag)."""
    if shutil.which("debootstrap") is None:
        raise Unavailable("debootstrap is not installed (scripts/setup.sh --system installs it)")
    done = subprocess.run([str(ROOT / "scripts" / "ci" / "base-image.sh"), BASE_TAG], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise Unavailable(f"cannot build the base image: {done.stderr.strip()[-500:]}")
    return BASE_TAG


class Registry:
    """Debian's docker-registry on 127.0.0.1, optionally with htpasswd authentication."""

    def __init__(self, folder: Path, user: str | None = None, password: str | None = None) -> None:
        if shutil.which("docker-registry") is None:
            raise Unavailable("docker-registry is not installed (scripts/setup.sh --system installs it)")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        auth = ""
        if user:
            htpasswd = folder / "htpasswd"
            subprocess.run(["htpasswd", "-Bbc", str(htpasswd), user, password], check=True, capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: modelops-tests\n    path: {htpasswd}\n"
        config = folder / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                          f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: {self.address}\n{auth}")
        self.log = open(folder / "registry.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401 from the auth registry: it answers
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        self.close()
        raise Unavailable(f"docker-registry did not start; see {folder / 'registry.log'}")

    def manifest_digest(self, repository: str, tag: str, auth: tuple[str, str] | None = None) -> str:
        """The registry's own digest of `repository:tag` (Docker-Content-Digest of its manifest)."""
        import base64

        request = urllib.request.Request(f"http://{self.address}/v2/{repository}/manifests/{tag}", method="HEAD")
        request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json, "
                                     "application/vnd.oci.image.manifest.v1+json")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Docker-Content-Digest"]

    def close(self) -> None:
        stop(self.process)
        self.log.close()
