"""Desired state (what git says) and actual state (what the registry holds), as plain frozen data.

The registry projection of a manifest:
- one registered model per manifest, tagged `modelops.managed=true` and `modelops.owners`, described by
  the manifest's description; `modelops.deployments` records the deployments apply last carried out;
- one model version per manifest version, tagged with the semantic version, the artifact's sha256, the method
  its MLmodel answers (the manifest's `method`), the manifest's sha256 and git commit and owners at
  registration, and `modelops.complete=true`, set last;
- one alias per environment (`production`), plus `<env>-canary` and `<env>-shadow-<i>` for a canary
  and shadow variants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.manifest.aliases import alias_problems, aliases_of
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import METHODS, Manifest

MANAGED = "modelops.managed"
OWNERS = "modelops.owners"
DEPLOYMENTS = "modelops.deployments"
VERSION = "modelops.version"
SHA256 = "modelops.sha256"
METHOD = "modelops.method"  # what the registered MLmodel's python_function answers: predict or predict_proba
MANIFEST_SHA256 = "modelops.manifest_sha256"
GIT_COMMIT = "modelops.git_commit"
COMPLETE = "modelops.complete"
# Written once at registration: their values are provenance, only their presence is checked.
PROVENANCE = (MANIFEST_SHA256, GIT_COMMIT, OWNERS)


@dataclass(frozen=True)
class DesiredVersion:
    """A manifest version: what must be registered."""

    version: str
    uri: str
    sha256: str
    description: str
    line: int | None  # of its sha256 in the manifest, for errors
    index: int = 0  # its place in the manifest's versions
    entry_line: int | None = None  # of its `version:` in the manifest, for errors


@dataclass(frozen=True)
class DesiredModel:
    """A manifest, projected: the registered model, its versions and its aliases."""

    name: str
    display: str  # the manifest's path, for errors
    folder: Path
    description: str
    owners: str
    manifest_sha256: str
    git_commit: str
    versions: tuple[DesiredVersion, ...]
    aliases: dict[str, str]  # alias -> semantic version
    deployments: str  # canonical JSON of the manifest's deployments
    manifest: Manifest
    method_line: int | None = None  # of the manifest's `method:`, for errors

    @property
    def method(self) -> str:
        return self.manifest.method

    def model_tags(self) -> dict[str, str]:
        return {MANAGED: "true", OWNERS: self.owners}

    def version_tags(self, version: DesiredVersion) -> dict[str, str]:
        """The tags a version is registered with (all but COMPLETE, which is set last)."""
        return {VERSION: version.version, SHA256: version.sha256, METHOD: self.method,
                MANIFEST_SHA256: self.manifest_sha256, GIT_COMMIT: self.git_commit, OWNERS: self.owners}


@dataclass(frozen=True)
class ActualVersion:
    """A model version as the registry holds it."""

    number: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""  # `models:/<id>` of the files apply uploaded
    uploaded_sha256: str = ""  # the sha256 tag of those files, read only to explain a digest conflict
    files_sha256: str = ""  # the digest of its files, computed only for a version to adopt (`adoptable`)
    # what its MLmodel answers, read only for a version to adopt or one whose METHOD tag names no method
    mlmodel_method: str = ""

    @property
    def method(self) -> str:
        """The method it answers: its METHOD tag when that names one, else its MLmodel's ("" when neither is
        known)."""
        tagged = self.tags.get(METHOD, "")
        return tagged if tagged in METHODS else self.mlmodel_method

    @property
    def adoptable(self) -> bool:
        """Registered outside modelops (plain MLflow), or its adoption cut short: neither a semantic version nor
        complete (apply registers with every tag but COMPLETE at once), so git may adopt it by its files' digest."""
        return not self.semver and not self.complete

    @property
    def semver(self) -> str:
        return self.tags.get(VERSION, "")

    @property
    def complete(self) -> bool:
        return self.tags.get(COMPLETE) == "true"


@dataclass(frozen=True)
class ActualModel:
    """A registered model as the registry holds it."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]  # alias -> version number
    versions: tuple[ActualVersion, ...]

    @property
    def applied_aliases(self) -> dict[str, str] | None:
        """The aliases apply last set (alias -> semantic version), None when not recorded."""
        try:
            return aliases_of(json.loads(self.tags[DEPLOYMENTS]))
        except (KeyError, ValueError, TypeError, AttributeError):
            return None


def desired(loaded: LoadedManifest, git_commit: str) -> DesiredModel:
    """The registry projection of one (validated) manifest."""
    m = loaded.manifest
    deployments = {env: d.model_dump(exclude_defaults=True) for env, d in m.deployments.items()}
    problems = alias_problems(loaded)
    if problems:
        raise ModelopsError.of(problems)
    aliases = aliases_of(deployments)
    versions = tuple(DesiredVersion(version=v.version, uri=v.artifact.uri, sha256=v.artifact.sha256,
                                    description=v.description, line=loaded.line("versions", i, "artifact", "sha256"),
                                    index=i, entry_line=loaded.line("versions", i, "version"))
                     for i, v in enumerate(m.versions))
    return DesiredModel(name=m.name, display=loaded.display, folder=loaded.folder, description=m.description,
                        owners=", ".join(m.owners), manifest_sha256=loaded.sha256, git_commit=git_commit,
                        versions=versions, aliases=aliases,
                        deployments=json.dumps(deployments, sort_keys=True, separators=(",", ":")), manifest=m,
                        method_line=loaded.line("method"))
