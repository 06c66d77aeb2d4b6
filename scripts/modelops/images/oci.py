"""The OCI distribution API, for what the Docker engine does not do: artifacts that refer to an image.

An artifact (the provenance) is an OCI 1.1 image manifest whose `subject` is the image's manifest. It is
listed where clients look for it: the registry's referrers API (`GET /v2/<name>/referrers/<digest>`) when
the registry answers it, else the referrers tag schema (an index at the tag `sha256-<hex of the digest>`),
as oras and cosign do against registries without that API (distribution 2.x).

Plain HTTP with requests, in this one module: oras-py (0.2) pushes a manifest only to a tag and without
`artifactType`, and implements neither the referrers API nor the tag schema. Credentials are
MODELOPS_REGISTRY_USERNAME/PASSWORD, else Docker's config (`docker login`, credential helpers), answering a
registry's Basic or Bearer challenge. Loopback registries speak HTTP (Docker's rule), others HTTPS.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass

import requests

from modelops.errors import ModelopsError

INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
MANIFESTS = (OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json", INDEX,
             "application/vnd.docker.distribution.manifest.list.v2+json")
MAX_BYTES = 16 * 1024 * 1024
_REF = re.compile(r"(?P<host>[^/]+)/(?P<repository>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
                  r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?")
_LOOPBACK = ("127.", "localhost", "[::1]")


@dataclass(frozen=True)
class Reference:
    """`host/repository[:tag][@digest]`."""

    host: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"


@dataclass(frozen=True)
class Descriptor:
    """What a manifest or blob is: media type, digest, size (and, for an artifact, its type)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str = ""

    def to_json(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size,
                **({"artifactType": self.artifact_type} if self.artifact_type else {})}


def parse(ref: str) -> Reference:
    """A reference that names its registry; a clear error otherwise."""
    match = _REF.fullmatch(ref)
    if not match or not ("." in match["host"] or ":" in match["host"] or match["host"] == "localhost"):
        raise ModelopsError(f"{ref!r} is not an image reference of a registry",
                            hint="use REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:<64 hex>, "
                                 "e.g. 127.0.0.1:5000/models/iris:1.0.0")
    return Reference(match["host"], match["repository"], match["tag"] or "", match["digest"] or "")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag of the artifacts referring to `digest`."""
    return digest.replace(":", "-")


class Distribution:
    """One image registry host (the distribution API), authenticated on the first challenge."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.base = f"{'http' if host.startswith(_LOOPBACK) else 'https'}://{host}/v2"
        self.session = requests.Session()
        self.auth: str | None = None

    def _credentials(self) -> tuple[str, str] | None:
        user, password = os.environ.get("MODELOPS_REGISTRY_USERNAME"), os.environ.get("MODELOPS_REGISTRY_PASSWORD")
        if user and password:
            return user, password
        import docker.auth

        found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry=self.host) or {}
        if found.get("username") and found.get("password"):
            return found["username"], found["password"]
        return None

    def _authenticate(self, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        credentials = self._credentials()
        if scheme.lower() == "basic" and credentials:
            self.auth = requests.auth._basic_auth_str(*credentials)
            return
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise ModelopsError(f"the registry {self.host} asks for credentials",
                                hint="set MODELOPS_REGISTRY_USERNAME and MODELOPS_REGISTRY_PASSWORD, or "
                                     "`docker login` the registry")
        query = {key: fields[key] for key in ("service", "scope") if key in fields}
        answer = self.session.get(fields["realm"], params=query, auth=credentials, timeout=30)
        if answer.status_code != 200:
            raise ModelopsError(f"the registry {self.host} refused a token ({answer.status_code})",
                                hint="check MODELOPS_REGISTRY_USERNAME/PASSWORD or `docker login`")
        body = answer.json()
        self.auth = f"Bearer {body.get('token') or body.get('access_token')}"

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: object
                ) -> requests.Response:
        """`method` on `/v2/<path>` (or an absolute upload URL); a located error unless the status is `ok`."""
        url = path if path.startswith("http") else f"{self.base}/{path}"
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        try:
            for _ in range(2):
                response = self.session.request(method, url, headers={**headers, **(
                    {"Authorization": self.auth} if self.auth else {})}, timeout=60, **kwargs)
                if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
                    break
                self._authenticate(response.headers["WWW-Authenticate"])
        except requests.RequestException as exc:
            raise ModelopsError(f"cannot reach the registry {self.host}: {str(exc)[:200]}",
                                hint="check the registry address and that it runs") from None
        if response.status_code not in ok:
            raise ModelopsError(f"the registry {self.host} answered {response.status_code} to {method} "
                                f"{url.split('?')[0]}: {response.text[:200]}",
                                hint="check the registry address, credentials and permissions")
        return response

    def resolve(self, ref: Reference) -> Descriptor:
        """The manifest `ref` names, as the registry holds it (its Docker-Content-Digest)."""
        where = ref.digest or ref.tag or "latest"
        response = self.request("HEAD", f"{ref.repository}/manifests/{where}", ok=(200, 404),
                                headers={"Accept": ", ".join(MANIFESTS)})
        if response.status_code == 404:
            raise ModelopsError(f"the registry has no image {ref.name}:{where}",
                                hint="push it first: modelops build --push (or apply --build --push)")
        return Descriptor(response.headers["Content-Type"].split(";")[0], response.headers["Docker-Content-Digest"],
                          int(response.headers.get("Content-Length", 0)))

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """A manifest's bytes and media type (checked against `reference` when it is a digest); None if absent."""
        response = self.request("GET", f"{repository}/manifests/{reference}", ok=(200, 404),
                                headers={"Accept": ", ".join(MANIFESTS)})
        if response.status_code == 404:
            return None
        data = response.content[:MAX_BYTES + 1]
        if len(data) > MAX_BYTES or (reference.startswith("sha256:") and digest_of(data) != reference):
            raise ModelopsError(f"the registry's manifest {repository}@{reference} does not match its digest")
        return data, response.headers.get("Content-Type", "").split(";")[0]

    def blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, checked against its digest."""
        data = self.request("GET", f"{repository}/blobs/{digest}").content
        if len(data) > MAX_BYTES or digest_of(data) != digest:
            raise ModelopsError(f"the registry's blob {repository}@{digest} does not match its digest")
        return data

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload `data` (monolithic: POST then PUT) unless the registry has it; its digest."""
        digest = digest_of(data)
        if self.request("HEAD", f"{repository}/blobs/{digest}", ok=(200, 404)).status_code == 200:
            return digest
        started = self.request("POST", f"{repository}/blobs/uploads/", ok=(202,))
        location = started.headers["Location"]
        if not location.startswith("http"):
            location = f"{self.base.rsplit('/v2', 1)[0]}{location}"
        self.request("PUT", location, ok=(201,), params={"digest": digest}, data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def push_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> requests.Response:
        return self.request("PUT", f"{repository}/manifests/{reference}", ok=(201,), data=data,
                            headers={"Content-Type": media_type})

    def referrers(self, repository: str, digest: str) -> list[dict]:
        """The descriptors of the artifacts referring to `digest`: the referrers API, else the tag schema."""
        response = self.request("GET", f"{repository}/referrers/{digest}", ok=(200, 404),
                                headers={"Accept": INDEX})
        if response.status_code == 200 and response.headers.get("Content-Type", "").startswith(INDEX):
            return list(response.json().get("manifests") or [])
        index = self.manifest(repository, fallback_tag(digest))
        return list(json.loads(index[0]).get("manifests") or []) if index else []

    def attach(self, repository: str, subject: Descriptor, payload: bytes, artifact_type: str,
               annotations: dict[str, str]) -> Descriptor:
        """Push `payload` as an artifact referring to `subject`, listed for the referrers API or tag schema."""
        empty = b"{}"
        self.push_blob(repository, empty)
        layer = self.push_blob(repository, payload)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": EMPTY, "digest": digest_of(empty), "size": len(empty)},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": len(payload)}],
            "subject": subject.to_json(), "annotations": annotations}, sort_keys=True).encode()
        digest = digest_of(manifest)
        pushed = self.push_manifest(repository, digest, manifest, OCI_MANIFEST)
        artifact = Descriptor(OCI_MANIFEST, digest, len(manifest), artifact_type)
        if pushed.headers.get("OCI-Subject") != subject.digest:  # no referrers API: the tag schema
            self._list(repository, subject.digest, {**artifact.to_json(), "annotations": annotations})
        return artifact

    def _list(self, repository: str, subject: str, descriptor: dict) -> None:
        """Add `descriptor` to the tag schema's index of `subject` (unless it is there)."""
        tag = fallback_tag(subject)
        found = self.manifest(repository, tag)
        index = json.loads(found[0]) if found else {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
        if any(m.get("digest") == descriptor["digest"] for m in index.get("manifests", [])):
            return
        index["manifests"] = [*index.get("manifests", []), descriptor]
        self.push_manifest(repository, tag, json.dumps(index, sort_keys=True).encode(), INDEX)
