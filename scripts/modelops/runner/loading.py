"""What to serve: a model folder's environment (version, canary, shadow) or a `models:/` registry URI.

`resolve` reads only the manifest (or the MLmodel file) and raises ModelopsError for user mistakes;
the artifacts themselves are fetched, verified and loaded later by `ServedModel.loaders`, in the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelops import artifacts, flavors, settings
from modelops.errors import ModelopsError
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.loading import load as load_manifest
from modelops.manifest.model import MANIFEST, Payloads
from modelops.signature.compiled import CompiledSignature, SignatureError
from modelops.signature.probabilities import class_problem
from modelops.signing import policy, verify
from modelops.workspace import find_root

DEFAULT_ENV = "production"
log = logging.getLogger("modelops.runner")


@dataclass(frozen=True)
class ServedModel:
    """One model's routed versions, its compiled signature and how to load each version."""

    model: str
    description: str
    signature: CompiledSignature
    primary: str
    loaders: dict[str, Callable[[], flavors.Predictor]]
    flavor: str = "pyfunc"  # how every version loads (a key of flavors.FLAVORS)
    canary: str | None = None
    weight: int = 0
    shadows: tuple[str, ...] = ()
    environment: str = ""
    example: list[dict] | None = field(default=None)
    payloads: Payloads | None = None  # the environment's payload logging (deployments.<env>.payloads)

    def describe(self) -> str:
        """One line: what is routed where."""
        where = f"{self.model} ({self.environment})" if self.environment else self.model
        text = f"{where}: {self.primary}"
        if self.canary:
            text += f" ({100 - self.weight} %), canary {self.canary} ({self.weight} %)"
        if self.shadows:
            text += f", shadow {', '.join(self.shadows)}"
        return text


class LoadFailed(Exception):
    """A version that cannot serve; the message says why (shown by /ready and /health, or by `score`)."""


def warm_up_rows(served: ServedModel) -> np.ndarray | None:
    """The example's rows, which each version scores once loaded (None: no example); raise LoadFailed."""
    if not served.example:
        return None
    try:
        return served.signature.records(served.example, "example")
    except SignatureError as exc:
        raise LoadFailed(f"the example does not fit the signature: {exc.field}: {exc.message}") from None


def load_version(served: ServedModel, version: str, example: np.ndarray | None) -> flavors.Predictor:
    """Fetch, verify and load one version, check its classes (predict_proba) and score `example` with it:
    what the runner does before it serves a version, and batch scoring before it scores one; raise
    LoadFailed saying why a version cannot serve."""
    try:
        predictor = served.loaders[version]()
    except ModelopsError as exc:
        hint = f" (hint: {exc.problem.hint})" if exc.problem.hint else ""
        raise LoadFailed(f"version {version} does not load: {exc}{hint}") from None
    except Exception as exc:
        raise LoadFailed(f"version {version} does not load: {type(exc).__name__}: {exc}") from None
    signature = served.signature
    if signature.probabilities and (wrong := class_problem(getattr(predictor, "classes", None),
                                                          signature.labels or [])):
        raise LoadFailed(f"version {version}: {wrong[0]} (hint: {wrong[1]})")
    if example is not None:
        try:
            predictor.predict(example)
        except Exception as exc:
            raise LoadFailed(f"version {version} fails to score the example: {type(exc).__name__}: {exc}") from None
    return predictor


def resolve(target: str, environment: str | None = None, version: str | None = None) -> ServedModel:
    """The ServedModel of a model folder (with an environment or a version) or of a `models:/` URI."""
    if target.startswith("models:/"):
        from modelops.runner.registered import from_registry

        return from_registry(target)
    return _from_folder(Path(target), environment, version)


def _from_folder(folder: Path, environment: str | None, version: str | None) -> ServedModel:
    if not (folder / MANIFEST).is_file():
        raise ModelopsError(f"{folder}: no {MANIFEST} here",
                            hint="pass a model folder such as models/iris, or a models:/name@alias URI")
    loaded = load_manifest(folder, Path.cwd())
    m = loaded.manifest
    known = [v.version for v in m.versions]
    if version:
        if version not in known:
            raise ModelopsError(f"no version {version!r}", file=loaded.display, field="versions",
                                hint=f"allowed values are: {', '.join(known)}")
        primary, canary, weight, shadows = version, None, 0, ()
        # one version of an environment that routes to it (a KServe revision runs its version's image with
        # MODELOPS_ENV): that environment's name and payload settings; otherwise none
        deployment = m.deployments.get(environment or "")
        if deployment is not None and version in (deployment.version, deployment.canary and deployment.canary.version):
            payloads = deployment.payloads
        else:
            environment, payloads = "", None
    else:
        environment = environment or DEFAULT_ENV
        deployment = m.deployments.get(environment)
        if deployment is None:
            hint = (f"allowed values are: {', '.join(m.deployments)} (or serve one version with --version)"
                    if m.deployments else "add a deployments entry, or serve one version with --version")
            raise ModelopsError(f"no deployment for environment {environment!r}", file=loaded.display,
                                line=loaded.line("deployments"), field="deployments", hint=hint)
        primary, payloads = deployment.version, deployment.payloads
        canary = deployment.canary.version if deployment.canary else None
        weight = deployment.canary.weight if deployment.canary else 0
        shadows = tuple(v for v in deployment.shadow if v not in (primary, canary))
        for number in (primary, canary, *shadows):
            if number and number not in known:
                raise ModelopsError(f"routes to unknown version {number!r}", file=loaded.display,
                                    line=loaded.line("deployments", environment),
                                    field=f"deployments.{environment}",
                                    hint=f"allowed values are: {', '.join(known)}")
    trust = _trust(folder)
    required = trust.required(known, m.deployments) if trust else set()

    def loader(number: str) -> Callable[[], flavors.Predictor]:
        artifact = m.version(number).artifact

        def load() -> flavors.Predictor:
            path = artifacts.fetch(artifact.uri, folder, artifact.sha256)
            if trust and number in required:  # verified before it loads: a failure is "not ready", saying why
                signature = policy.signature_path(folder, number)
                try:
                    signer = verify.check(path, signature, trust)
                except verify.Unverified as exc:
                    raise verify.Unverified(f"{policy.SIGNATURE_DIR}/{signature.name}: {exc.problem.message}",
                                            hint=exc.problem.hint) from None
                log.info("version %s: signature verified (signed by %s)", number, signer)
            return flavors.load(m.flavor, path, m.signature.inputs, m.method)
        return load

    versions = [v for v in (primary, canary, *shadows) if v]
    return ServedModel(model=m.name, description=m.description,
                  signature=CompiledSignature(m.signature.inputs, m.signature.outputs, m.method), primary=primary,
                  loaders={v: loader(v) for v in versions}, flavor=m.flavor, canary=canary, weight=weight,
                  shadows=shadows, environment=environment, example=_example(loaded) if m.example else None,
                  payloads=payloads)


def _trust(folder: Path) -> policy.Trust | None:
    """What the served versions must be signed by: in a repository, its `[tool.modelops.signing]` (the versions
    it requires; a model folder there cannot bring keys of its own); elsewhere (an image), the folder's
    `trusted-keys/` (every version), or None."""
    try:
        root = find_root(folder)
    except ModelopsError:
        return policy.image_trust(folder)
    return policy.load(root, settings.pyproject_table(root))


def _example(loaded: LoadedManifest) -> list[dict] | None:
    """The example's input records, or None when the file is unreadable (it only decorates /docs)."""
    try:
        rows = json.loads(loaded.read("example"))["inputs"]
    except (ModelopsError, ValueError, KeyError, TypeError):
        return None
    return rows if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows) else None
