"""One function per verb. The CLI parses, calls one of these with the command's Workspace, and prints.

Each function returns data (problems, a plan, images, files) and reports progress through the
workspace's reporter; none prints. User mistakes raise ModelopsError.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import ModelopsError, Problem, excerpt
from modelops.images.targets import ImageTarget, targets
from modelops.manifest import codeowners as owners_file
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import MANIFEST, MODELS_DIR
from modelops.registry.plan import Action, Plan
from modelops.reporter import Reporter
from modelops.workspace import Workspace

if TYPE_CHECKING:
    from modelops.canary.decide import Decision
    from modelops.canary.observe import Observations
    from modelops.images.build import Image
    from modelops.images.context import Context
    from modelops.images.smoke import SmokeResult
    from modelops.images.verify import Verified
    from modelops.manifest.edit import EditResult
    from modelops.manifest.history import History
    from modelops.manifest.promote import Promotion
    from modelops.registry.client import Registry
    from modelops.registry.importer import Imported
    from modelops.registry.projection import ActualModel, DesiredModel
    from modelops.runner.batch import Scored
    from modelops.runner.runtime import RunnerSettings
    from modelops.scan.run import Report

# A change under these touches every model: they shape how every model is built, trusted and served.
PLATFORM_PATHS = ("templates/", "scripts/", "pyproject.toml", "keys/")


# -- manifests ------------------------------------------------------------------------------------------
def new(ws: Workspace, name: str, owner: str, description: str, flavor: str = "sklearn") -> Path:
    """Scaffold `models/NAME/` from `templates/new-model/` for an artifact of `flavor`; returns the folder."""
    from modelops.manifest.scaffold import new as scaffold

    return scaffold(ws.root, name, owner, description or f"{name} model", flavor)


def validate(ws: Workspace, folders: list[Path], *, offline: bool = False) -> list[Problem]:
    """Every problem of the model folders and of the CODEOWNERS file (none: all is well). Unless `offline`,
    each version is also loaded and scores the example in the sandbox."""
    from modelops.manifest import validate as checks

    problems: list[Problem] = []
    for folder in folders:
        try:
            loaded = ws.manifest(folder)
        except ModelopsError as exc:
            problems += exc.problems
            continue
        problems += checks.check(loaded, ws.fetch, offline=offline, reporter=ws.reporter, trust=ws.trust)
    return problems + [p for p in codeowners_problems(ws) if p not in problems]


@dataclass(frozen=True)
class Signed:
    """What `sign` did: the signature of one version, and whether it was written (False: it was already there)."""

    signature: Path
    written: bool


def sign(ws: Workspace, model: str, version: str, *, key: Path | None = None, sigstore: bool = False,
         identity_token: str | None = None) -> Signed:
    """Sign version `version` of `model` (a name under models/, or a model folder): its artifact, fetched and
    checked against its sha256 first, signed with the private `key` or with Sigstore; the signature goes to
    `artifacts/<version>.sig` in the model folder. Signing again with the same key changes nothing."""
    from modelops.signing import policy
    from modelops.signing import sign as signer

    folder = Path(model) if Path(model).is_dir() else ws.root / MODELS_DIR / model
    if not (folder / MANIFEST).is_file():
        raise ModelopsError(f"{model}: no such model", hint=f"name a model under {MODELS_DIR}/ or a model folder")
    loaded = ws.manifest(folder)
    known = [v.version for v in loaded.manifest.versions]
    if version not in known:
        raise ModelopsError(f"{loaded.manifest.name} has no version {version}", file=loaded.display,
                            field="versions", hint=f"known versions are: {', '.join(known)}")
    index = known.index(version)
    artifact = loaded.manifest.versions[index].artifact
    try:
        path = ws.fetch(artifact.uri, loaded.folder, artifact.sha256)
    except ModelopsError as exc:
        raise ModelopsError(exc.problem.message, file=loaded.display, line=loaded.line("versions", index, "artifact"),
                            field=f"versions[{index}].artifact", hint=exc.problem.hint) from None
    signature = policy.signature_path(loaded.folder, version)
    written = signer.sign(path, signature, key=key, sigstore=sigstore, identity_token=identity_token)
    return Signed(signature, written)


def changed(ws: Workspace, base: str) -> dict:
    """{"models": touched models that exist, "deleted": model folders removed, "all": the platform changed}."""
    from modelops.git import changed_files

    files = changed_files(ws.root, base)
    existing = sorted(p.parent.name for p in (ws.root / MODELS_DIR).glob(f"*/{MANIFEST}"))
    platform = any(f.startswith(PLATFORM_PATHS) for f in files)
    touched = {parts[1] for f in files if len(parts := f.split("/")) > 2 and parts[0] == MODELS_DIR}
    models = existing if platform else sorted(touched & set(existing))
    return {"models": models, "deleted": sorted(touched - set(existing)), "all": platform}


def codeowners(ws: Workspace) -> bool:
    """Bring `.github/CODEOWNERS` up to date with every manifest's owners; True when it changed."""
    return owners_file.write(ws.root, _every_manifest(ws))


def codeowners_problems(ws: Workspace) -> list[Problem]:
    """What is wrong with `.github/CODEOWNERS` (missing, stale, unreadable), or the invalid manifests that
    keep it from being checked."""
    return owners_file.problems(ws.root, lambda: _every_manifest(ws))


def _every_manifest(ws: Workspace) -> list[LoadedManifest]:
    """The manifest of every model folder CODEOWNERS lists; raises for the first invalid one."""
    folders = ws.folders() if (ws.root / MODELS_DIR).is_dir() else []
    return [ws.manifest(folder) for folder in folders if owners_file.listed(folder)]


def schema() -> dict:
    """The manifest's JSON Schema."""
    from modelops.manifest.model import json_schema

    return json_schema()


def digest(path: Path) -> str:
    """The sha256 of an artifact file, or the canonical tree digest of a folder."""
    from modelops.artifacts import digest as artifact_digest

    return artifact_digest(path)


# -- editing manifests (release, promote) and their history --------------------------------------------
def model_folder(ws: Workspace, model: str) -> Path:
    """The folder of `model`: a model's name (`models/<name>`) or its folder's path."""
    if "/" in model or model in (".", ".."):
        folders = ws.folders((model,))
        if len(folders) != 1:
            raise ModelopsError(f"{model} holds {len(folders)} models", field="MODEL", hint="name one model")
        return folders[0]
    _check_name(model)
    folder = ws.root / MODELS_DIR / model
    if not (folder / MANIFEST).is_file():
        known = sorted(p.parent.name for p in (ws.root / MODELS_DIR).glob(f"*/{MANIFEST}"))
        raise ModelopsError(f"no model {model} in {MODELS_DIR}/", field="MODEL",
                            hint=f"models here: {', '.join(known)}" if known else "create it: modelops new NAME")
    return folder


def release(ws: Workspace, model: str, version: str, artifact: str, *, description: str = "",
            dry_run: bool = False) -> EditResult:
    """Append `version` of `model` from `artifact` (a local file or folder, copied to artifacts/<version>/,
    or a URI, kept): checked (it loads and scores the example), pinned by its digest, written with its diff."""
    from modelops.manifest.release import release as release_version

    return release_version(ws.root, model_folder(ws, model), version, artifact, ws.fetch, description=description,
                           dry_run=dry_run, reporter=ws.reporter)


def promote(ws: Workspace, model: str, env: str, asked: Promotion, *, dry_run: bool = False) -> EditResult:
    """Change what `env` of `model` serves (`asked`: a version, a canary and its weight, shadows, the end of
    the canary, or a rollback to what it served before its last committed change), editing the manifest in
    place once the result validates."""
    from modelops.manifest.promote import promote as promote_env

    return promote_env(ws.root, model_folder(ws, model), env, asked, ws.fetch, dry_run=dry_run)


def history(ws: Workspace, model: str, env: str | None = None) -> History:
    """Which versions each environment of `model` served, from when to when, and who changed it (git)."""
    from modelops.manifest.history import History
    from modelops.manifest.history import history as read_history

    name = model_folder(ws, model).name if "/" in model else _check_name(model)  # a removed model has one too
    found = read_history(ws.root, name)
    return found if env is None else History(found.model, found.file, tuple(found.of(env, "--env")), found.notes)


def _check_name(model: str) -> str:
    """`model`, when it is a model's name."""
    import re

    from modelops.manifest.model import NAME_HINT, NAME_RE

    if not re.match(NAME_RE, model):
        raise ModelopsError(f"{excerpt(model)} is not a model name", field="MODEL", hint=NAME_HINT)
    return model


# -- the registry ---------------------------------------------------------------------------------------
def plan(ws: Workspace, folders: list[Path], *, every_model: bool, images: bool | None = False) -> Plan:
    """What apply would do, and drift; `every_model` also reports managed models that git no longer lists.

    `images`: also list the runner images with no recorded reference (`build-image`, done by
    `apply --build --push`); None lists them when the registry records images for any planned model.
    """
    from modelops.registry import image_tags
    from modelops.registry.client import Registry, errors

    models = _desired(ws, folders)
    registry = Registry(ws)
    with errors(ws.settings):
        actual, managed, locks = registry.read(m.name for m in models)
    result = _diff(registry, models, actual, managed if every_model else None)
    held = tuple(f"{name} is locked by another apply: {holder} (apply waits for it; `modelops unlock {name}` "
                 "releases a lock whose apply is gone)" for name, holder in sorted(locks.items()))
    result = replace(result, notes=result.notes + held)
    if images is None:
        images = any(image_tags.manages_images(actual.get(m.name)) for m in models)
    if not images:
        return result
    builds = [a for m in models for a in image_tags.missing(m, actual.get(m.name), ws.settings.image_registry)]
    return replace(result, actions=result.actions + tuple(builds))


def import_models(ws: Workspace, names: list[str], *, every: bool = False, tracking_uri: str | None = None,
                  copy: bool = True, owners: list[str] | None = None, offline: bool = False
                  ) -> tuple[list[Imported], list[str]]:
    """Write `models/<name>/` for each registered model `names` (or, `every`, each one import can take) of the
    registry at `tracking_uri` (default: the repository's): manifest, requirements, example, and artifacts
    copied in (or, not `copy`, pointed to by `models:/` URIs), checked as validate checks them before anything
    is written. Returns what was imported, and notes on the models left out (modelops manages them already)."""
    from modelops.registry import importer
    from modelops.registry.client import Registry, errors

    if every == bool(names):
        raise ModelopsError("name the registered models to import, or --all", field="MODEL",
                            hint="modelops import churn (one model), or modelops import --all (every one)")
    settings = ws.settings
    if tracking_uri and tracking_uri.rstrip("/") != settings.tracking_uri.rstrip("/"):
        if not copy:
            raise ModelopsError(f"the models:/ URIs it writes resolve in the repository's registry "
                                f"({settings.tracking_uri}), not in {tracking_uri}", field="--uri",
                                hint="import from the registry the repository applies to, or copy the files in "
                                     "(--copy)")
        settings = replace(settings, tracking_uri=tracking_uri,
                           sources={**settings.sources, "tracking_uri": "--tracking-uri"})
    registry = Registry(ws, settings)
    with errors(settings, again="import writes nothing until every model is read and checked"):
        skipped: list[str] = []
        if every:
            names, skipped = importer.importable(registry)
        imported, notes = importer.import_models(ws, registry, names, copy=copy, owners=owners or ["@ml-team"],
                                                 offline=offline)
        return imported, skipped + notes


@dataclass
class Applied:
    """What `apply` did: the registry's plan carried out, for the (validated) models of git."""

    plan: Plan
    models: list[DesiredModel] = field(default_factory=list)


def apply(ws: Workspace, folders: list[Path], *, every_model: bool) -> Applied:
    """Reconcile the registry to git; refuses before any write when a registered version changed.

    Each model with work is locked, read afresh and planned again, so two applies at once never register
    a version twice; each action carried out is reported. SIGTERM or SIGINT stop it between two writes.
    """
    from modelops.registry.client import Registry, errors

    models = {m.name: m for m in _desired(ws, folders)}
    registry = Registry(ws)
    with _StopBetweenSteps() as stop, errors(ws.settings):
        actual, managed, _ = registry.read(models)
        first = _diff(registry, list(models.values()), actual, managed if every_model else None)
        refuse(first)
        carried: list[Action] = []
        for name in dict.fromkeys(a.model for a in first.actions):
            with registry.lock(name):
                fresh = registry.read_one(name)
                again = _diff(registry, [models[name]], {name: fresh} if fresh else {})
                refuse(again)
                numbers: dict[str, str] = {}
                for action in again.actions:
                    with stop.step():
                        registry.execute(action, models[name], numbers)
                        carried.append(action)
                        ws.reporter.result(f"  + {action.text()}")
    return Applied(Plan(tuple(carried), first.drift, notes=first.notes), list(models.values()))


def apply_images(ws: Workspace, models: list[DesiredModel], *, push: bool) -> tuple[list[Image], list[Action]]:
    """Build (and push) every runner image of each model `apply` reconciled, then record each pushed image
    on the registry.

    A model's tags are written only once all its images are pushed, each with the registry's digest, and
    only where they differ: a second run with nothing changed writes nothing.
    """
    from modelops.images.build import build
    from modelops.registry import image_tags
    from modelops.registry.client import Registry, errors

    registry = Registry(ws)
    built: list[Image] = []
    recorded: list[Action] = []
    with _StopBetweenSteps() as stop:
        for model in models:
            loaded = ws.manifest(model.folder)
            built_now = build(ws, loaded, targets(loaded.manifest), push_images=push)  # a signal may cut a build
            built += built_now
            if not push:
                continue
            with errors(ws.settings), registry.lock(model.name):
                actual = registry.read_one(model.name)
                if actual is None:
                    raise ModelopsError(f"{model.name} is not registered", hint="run `modelops apply` first")
                for action in image_tags.record(model, actual, built_now):
                    with stop.step():
                        registry.execute(action, model, {})
                        recorded.append(action)
                        ws.reporter.result(f"  + {action.text()}")
    return built, recorded


def unlock(ws: Workspace, name: str, *, force: bool = False) -> str:
    """Release the lock an apply left on model `name` (refused while its holder looks alive, unless `force`);
    returns what was done. Nothing to do when there is no lock."""
    import re

    from modelops.manifest.model import NAME_HINT, NAME_RE
    from modelops.registry.client import Registry, errors

    if not re.match(NAME_RE, name):
        raise ModelopsError(f"{excerpt(name)} is not a model name", field="MODEL", hint=NAME_HINT)
    with errors(ws.settings):
        return Registry(ws).unlock(name, force=force)


class _StopBetweenSteps:
    """SIGTERM and SIGINT during apply: the registry write under way (one action) finishes, then apply stops
    with the locks released; outside a write (a wait, a read, an image build) it stops at once. A second
    signal stops at once too. Without steps (score), either signal is a KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.signal = ""
        self._in_step = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopBetweenSteps:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._noted) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *_: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _noted(self, number: int, _frame: object) -> None:
        if self.signal or not self._in_step:
            raise KeyboardInterrupt
        self.signal = signal.Signals(number).name

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """One step that a signal does not cut in half."""
        self._in_step = True
        try:
            yield
        finally:
            self._in_step = False
        if self.signal:
            raise ModelopsError(f"apply stopped by {self.signal} once the step under way was done: nothing is "
                                "half-done, and its locks are released", hint="run apply again to finish")


def refuse(plan: Plan) -> None:
    """Raise when the plan changes an already-registered version."""
    if plan.conflicts:
        raise ModelopsError.of(list(plan.conflicts))


def _desired(ws: Workspace, folders: list[Path]) -> list[DesiredModel]:
    """Git's side: the validated manifests (offline: schema, references, local artifact digests)."""
    from modelops.registry.projection import desired

    problems = validate(ws, folders, offline=True)
    if problems:
        raise ModelopsError.of(problems)
    return [desired(ws.manifest(folder), ws.commit) for folder in folders]


def _diff(registry: Registry, models: list[DesiredModel], actual: dict[str, ActualModel],
          managed: set[str] | None = None) -> Plan:
    """The plan; a model with a digest conflict is diffed again knowing the sha256 of the files apply uploaded,
    which tells a registry tag edited by hand from an artifact changed in git, and a model with versions to
    register and versions registered outside modelops, knowing those versions' digests (to adopt them)."""
    from modelops.registry.plan import diff

    result = diff(models, actual, managed)
    conflicting = {d.model for d in result.drift if d.kind == "digest"}
    adopting = {a.model for a in result.actions if a.kind == "register" and a.model in actual
                and any(v.adoptable for v in actual[a.model].versions)}
    if not conflicting and not adopting:
        return result
    actual = {name: registry.with_uploaded(m) if name in conflicting else m for name, m in actual.items()}
    actual = {name: registry.with_files(m) if name in adopting else m for name, m in actual.items()}
    return diff(models, actual, managed)


# -- images ---------------------------------------------------------------------------------------------
def image_targets(ws: Workspace, folders: list[Path], versions: tuple[str, ...] = (), envs: tuple[str, ...] = ()
                  ) -> list[tuple[LoadedManifest, list[ImageTarget]]]:
    """Per model folder, its manifest and the images asked for (all of them without versions or envs)."""
    picked = []
    for folder in folders:
        loaded = ws.manifest(folder)
        picked.append((loaded, targets(loaded.manifest, versions, envs)))
    return picked


def render(ws: Workspace, folders: list[Path], versions: tuple[str, ...] = (), envs: tuple[str, ...] = (), *,
           out: Path | None = None, wheels: Path | None = None) -> list[Context]:
    """Write the build context of each image asked for (to `out` when there is exactly one)."""
    from modelops.images import context

    picked = image_targets(ws, folders, versions, envs)
    count = sum(len(chosen) for _, chosen in picked)
    if out is not None and count != 1:
        raise ModelopsError(f"--out takes one image, but {count} are selected",
                            hint="name one model folder and one --version or --env")
    return [context.render(ws, loaded, target, out or context.default_out(ws.root, target), wheels)
            for loaded, chosen in picked for target in chosen]


def render_kubernetes(ws: Workspace, folders: list[Path], out: Path, *, target: str = "deployment",
                      env: str | None = None, images: Path | None = None, prune: bool = False
                      ) -> tuple[list[Path], list[str]]:
    """Write the Kubernetes (or KServe) manifests of each model and environment under `out`, for a GitOps
    engine; `images` is `build --format json` output, to deploy by digest. Returns the files and notes."""
    from modelops.images.deploy import image_refs
    from modelops.kubernetes import render as kubernetes

    problems = validate(ws, folders, offline=True)
    if problems:
        raise ModelopsError.of(problems)
    refs = image_refs(images) if images else None
    manifests = [ws.manifest(folder) for folder in folders]
    return kubernetes.render(ws.root, ws.settings, manifests, out, target=target, env=env, refs=refs, prune=prune)



def render_compose(ws: Workspace, folders: list[Path], out: Path, *, env: str | None = None,
                   images: Path | None = None, prune: bool = False) -> tuple[list[Path], list[str]]:
    """Write the Docker Compose file of each environment under `out`, a service per model, for plain Docker
    hosts; `images` is `build --format json` output, to pin images by digest. Returns the files and notes."""
    from modelops.compose import render as compose
    from modelops.images.deploy import image_refs

    problems = validate(ws, folders, offline=True)
    if problems:
        raise ModelopsError.of(problems)
    refs = image_refs(images) if images else None
    manifests = [ws.manifest(folder) for folder in folders]
    return compose.render(ws.root, ws.settings, manifests, out, env=env, refs=refs, prune=prune)

def build(ws: Workspace, folders: list[Path], versions: tuple[str, ...] = (), envs: tuple[str, ...] = (), *,
          push: bool = False, wheelhouse: Path | None = None) -> list[Image]:
    """Build one image per version and one per deployment routing to several versions (and push them)."""
    from modelops.images.build import build as build_images

    return [image for loaded, chosen in image_targets(ws, folders, versions, envs)
            for image in build_images(ws, loaded, chosen, push_images=push, wheels=wheelhouse)]


def smoke(ws: Workspace, subjects: list[str], versions: tuple[str, ...] = (), envs: tuple[str, ...] = (), *,
          timeout: float = 120) -> list[SmokeResult]:
    """Run each image (a reference, or a model folder's built images), wait for /ready, score the example,
    check the answer and remove the container."""
    from modelops.images import build as engines
    from modelops.images.smoke import smoke as smoke_image

    engine = engines.client()
    refs = []
    for subject in subjects:
        if Path(subject).is_dir():
            refs += [engines.tags(ws.settings.image_registry, target, ws.commit)[0]
                     for _, chosen in image_targets(ws, ws.folders((subject,)), versions, envs) for target in chosen]
        else:
            refs.append(subject)
    return [smoke_image(engine, ref, ws.reporter, timeout) for ref in refs]


def verify(ws: Workspace, subjects: list[str]) -> list[Verified]:
    """Check that each pushed image's labels, SBOM and provenance agree with one another, with the image
    registry and with what MLflow records; every disagreement of every image is reported."""
    from modelops.images import build as engines
    from modelops.images.verify import verify as verify_image
    from modelops.registry import image_tags
    from modelops.registry.client import Registry, errors

    engine, registries, models = engines.client(), [], {}

    def recorded(model: str, key: str, envs: list[str]) -> dict[str, str]:
        if model not in models:
            registries[:] = registries or [Registry(ws)]  # MLflow only once an image is read
            with errors(ws.settings):
                models[model] = registries[0].read_one(_check_name(model))
        return image_tags.recorded(models[model], key, envs)

    results, problems = [], []
    for subject in subjects:
        try:
            results.append(verify_image(engine, subject, recorded, ws.reporter))
        except ModelopsError as exc:
            problems += [p if p.file else replace(p, file=subject) for p in exc.problems]
    if problems:
        raise ModelopsError.of(problems)
    return results


# -- the runner -----------------------------------------------------------------------------------------
def serve(target: str, environment: str | None = None, version: str | None = None, *, host: str = "127.0.0.1",
          port: int = 8080, workers: int = 1, settings: RunnerSettings | None = None, access_log: bool = False,
          reporter: Reporter | None = None) -> None:
    """Serve a model folder's environment (or one `version`), or a `models:/` URI, until stopped.

    User errors (no such folder, environment or version) raise before anything binds; the reporter hears
    what is served and where /docs is.
    """
    from modelops.runner.loading import resolve
    from modelops.runner.runtime import RunnerSettings
    from modelops.runner.serve import run

    reporter = reporter or Reporter()
    resolved = resolve(target, environment, version)
    shown = f"[{host}]" if ":" in host else host
    reporter.result(f"serving {resolved.describe()}")
    reporter.result(f"Swagger UI: http://{shown}:{port}/docs   (scoring: POST /invocations, /predict, "
                    f"/v2/models/{resolved.model}/infer)")
    run(resolved, target, environment, version, host=host, port=port, workers=workers,
        settings=settings or RunnerSettings.from_env(), access_log=access_log)


# -- canaries -------------------------------------------------------------------------------------------
@dataclass
class Judged:
    """One deployment's canary judged: where, what was observed, the verdict, and whether it was written."""

    model: str
    env: str
    file: str
    observed: Observations
    verdict: Decision
    diff: str = ""  # the manifest's change, when written


def canary(ws: Workspace, folders: list[Path], env: str | None = None, *, named: bool = False,
           prometheus: str | None = None, metrics_urls: tuple[str, ...] = (), write: bool = False) -> list[Judged]:
    """Judge each deployment with a rollout policy (of `folders`, in `env` or every environment) on its
    runners' metrics, from Prometheus (`prometheus`, else the prometheus_url setting) or the runners'
    `metrics_urls`; with `write`, rewrite the manifests (validated first). `named`: the folders and `env`
    were asked for by name, so a deployment without a policy is an error rather than skipped."""
    from modelops.canary import observe
    from modelops.canary.decide import decide
    from modelops.canary.queries import selector
    from modelops.manifest.edit import ManifestEditor
    from modelops.manifest.serving import Serving

    if prometheus is not None and metrics_urls:
        raise ModelopsError("--prometheus and --metrics-url name two sources of the same numbers: give one",
                            field="--prometheus", hint="--prometheus URL reads Prometheus over the policy's window; "
                                                       "--metrics-url URL reads the runners since they started")
    problems = validate(ws, folders, offline=True)
    if problems:
        raise ModelopsError.of(problems)
    picked = [(loaded, e) for loaded in map(ws.manifest, folders) for e in _rolled_out(loaded, env, named)]
    if metrics_urls and len(picked) > 1:
        raise ModelopsError(f"--metrics-url reads the runners of one deployment, but {len(picked)} have a rollout "
                            "policy", field="--metrics-url", hint="name one MODEL and its --env")
    if picked and not metrics_urls:
        url, file, where = _prometheus(ws, prometheus)
    judged = []
    for loaded, e in picked:
        if metrics_urls:
            observed = observe.from_metrics(list(metrics_urls), loaded.manifest.name, e)
        else:
            policy = loaded.manifest.deployments[e].rollout
            assert policy is not None
            observed = observe.from_prometheus(url, selector(ws.settings.prometheus_selector, loaded.manifest.name, e),
                                               policy.window, file=file, field=where)
        judged.append(Judged(loaded.manifest.name, e, loaded.display, observed,
                             decide(e, loaded.manifest.deployments[e], observed, _changed(ws, loaded))))
    if write:  # every edit made and checked before any is written
        edits = []
        for loaded in {loaded.display: loaded for loaded, _ in picked}.values():
            mine = [j for j in judged if j.file == loaded.display and j.verdict.changes]
            if mine:
                editor = ManifestEditor(loaded.folder, ws.root)
                if editor.loaded.sha256 != loaded.sha256:  # the verdicts are of the manifest as it was read
                    raise ModelopsError("changed while its canaries were judged: nothing written", file=loaded.display,
                                        hint="run modelops canary again, to judge the manifest as it is now")
                for j in mine:
                    editor.serve(j.env, j.verdict.serving(Serving.of(loaded.manifest.deployments[j.env])))
                editor.check(ws.fetch, offline=True)
                edits.append((editor, mine))
        for editor, mine in edits:
            diff = editor.diff()
            editor.write()
            for j in mine:
                j.diff = diff
    return judged


def _changed(ws: Workspace, loaded: LoadedManifest) -> tuple[str, float] | None:
    """The manifest's last commit, and how long ago it was made (None outside git)."""
    import time

    from modelops.git import last_change

    found = last_change(ws.root, loaded.folder / MANIFEST)
    return None if found is None else (found[0], time.time() - found[1])


def _rolled_out(loaded: LoadedManifest, env: str | None, named: bool) -> list[str]:
    """The environments of a manifest to judge: `env` (or every one) with a rollout policy."""
    deployments = loaded.manifest.deployments
    if env is not None and env not in deployments:
        if not named:
            return []
        raise ModelopsError(f"{loaded.manifest.name} does not deploy to {env!r}", file=loaded.display,
                            field="deployments", hint=f"its environments are: {', '.join(deployments) or 'none'}")
    if env is not None and named and deployments[env].rollout is None:
        raise ModelopsError(f"deployments.{env} has no rollout policy", file=loaded.display,
                            line=loaded.line("deployments", env), field=f"deployments.{env}.rollout",
                            hint="add rollout: {steps: [10, 30, 100], window: 10m, min_requests: 500, "
                                 "max_error_rate: 0.01} (README, the manifest)")
    return [e for e in sorted(deployments) if env in (None, e) and deployments[e].rollout is not None]


def _prometheus(ws: Workspace, flag: str | None) -> tuple[str, str, str]:
    """The Prometheus URL to read, and the file and field it came from (for errors)."""
    import re

    from modelops.settings import PROMETHEUS_URL_RE

    if flag is not None:
        if not re.fullmatch(PROMETHEUS_URL_RE, flag):
            raise ModelopsError(f"{excerpt(flag)} is not an http(s) URL", field="--prometheus",
                                hint="give Prometheus's address, such as http://prometheus:9090")
        return flag.rstrip("/"), "", "--prometheus"
    url, source = ws.settings.prometheus_url, ws.settings.sources.get("prometheus_url", "pyproject.toml")
    if not url:
        raise ModelopsError("no Prometheus to read the runners' metrics from", file="pyproject.toml",
                            field="tool.modelops.prometheus_url",
                            hint="set prometheus_url in [tool.modelops] (or MODELOPS_PROMETHEUS_URL), pass "
                                 "--prometheus URL, or read the runners themselves with --metrics-url URL")
    return url, "" if source == "(default)" else source, "tool.modelops.prometheus_url"
def score(target: str, source: str, output: str, environment: str | None = None, version: str | None = None, *,
          rejects: str | None = None, keep: tuple[str, ...] = (), chunk_rows: int | None = None,
          reporter: Reporter | None = None) -> Scored:
    """Score the file `source` (CSV, JSON Lines or Parquet; a path or a store's URI) into `output` with the
    version a model folder's environment serves (its primary: no canary, no shadow), one `version`, or a
    `models:/` URI, as the runner would; rows that do not fit go to `rejects` or fail the run, which then
    writes nothing. The reporter hears what is scored and how far it is."""
    from modelops.runner import batch
    from modelops.runner.loading import resolve

    reporter = reporter or Reporter()
    resolved = resolve(target, environment, version)
    where = f" ({resolved.environment})" if resolved.environment else ""
    reporter.progress(f"scoring {source} with {resolved.model}{where} {resolved.primary}")
    with _StopBetweenSteps():  # no step: SIGTERM stops at once, as SIGINT does, and the partial files go
        scored = batch.score(resolved, source, output, rejects=rejects, keep=keep,
                             chunk_rows=chunk_rows or batch.DEFAULT_CHUNK_ROWS, progress=reporter.advance)
    if environment and resolved.environment != environment:  # as serve takes them: the version wins
        unused = f"--env {environment} not used: it does not route to {resolved.primary}, which was scored"
        scored = replace(scored, note="; ".join(n for n in (scored.note, unused) if n))
    return scored


# -- supply chain ---------------------------------------------------------------------------------------
def scan(ws: Workspace, folders: list[Path], *, engine: str = "safety", db: Path | None = None,
         osv_url: str | None = None, sboms: tuple[Path, ...] = (), environments: tuple[Path, ...] = (),
         images: tuple[str, ...] = (), save_sbom: Path | None = None, policy_file: Path | None = None,
         built: Path | None = None) -> Report:
    """Scan the models' pinned requirements, SBOMs, Python environments and images (also those of `built`, a
    `build --format json` file) for known vulnerabilities, judged by the policy."""
    from modelops.images.deploy import image_refs
    from modelops.scan import engines, policy, sbom
    from modelops.scan.run import scan as run_scan

    if built is not None:
        images += tuple(ref for keys in image_refs(built).values() for ref in keys.values())

    if save_sbom and len(environments) != 1:
        raise ModelopsError("--save-sbom needs exactly one --environment")
    loaded = policy.load(ws.root, ws.tool_table, policy_file)
    chosen = engines.make(engine, db=db, osv_url=osv_url)
    with tempfile.TemporaryDirectory(prefix="modelops-sbom-") as tmp:
        boms = [(path.as_posix(), path) for path in sboms]
        for i, python in enumerate(environments):
            boms.append((f"environment {python}", sbom.generate(python, save_sbom or Path(tmp) / f"{i}.cdx.json")))
        boms += [(f"image {ref}", sbom.from_image(ref, Path(tmp) / f"image-{i}.cdx.json"))
                 for i, ref in enumerate(images)]
        return run_scan(folders, boms, ws.manifest, chosen, loaded, policy.today())
