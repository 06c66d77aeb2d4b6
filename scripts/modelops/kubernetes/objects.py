"""Kubernetes manifests for each model and environment, from `templates/kubernetes/`, for Argo CD or Flux.

Layout written under the output folder (by default `deploy/`):
  <env>/kustomization.yaml      the environment's entry point: its namespace and every file below, sorted
  <env>/namespace.yaml          the namespace `models-<env>`
  <env>/<model>/*.yaml          Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget
                                (or one KServe InferenceService with `--target kserve`)
  gitops/argocd/<env>.yaml      an Argo CD Application syncing <env>/
  gitops/flux/*.yaml            a Flux GitRepository and one Kustomization per environment
Every file starts with HEADER; only such files are ever replaced or deleted, so rendering twice gives the
same bytes and a model or environment that disappears from the manifests disappears from the tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from modelops import settings, templates
from modelops.errors import ModelopsError
from modelops.files import check_file, write_text
from modelops.images.context import PORT, UID
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Deployment
from modelops.settings import IMAGE_RE

TARGETS = ("deployment", "kserve")
KINDS = {"deployment": ("deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget"),
         "kserve": ("inferenceservice",)}
HEADER = "# Rendered by `modelops render`"
GITOPS = "gitops"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def namespace(env: str) -> str:
    """The namespace an environment runs in."""
    return f"models-{env}"


def served(deployment: Deployment) -> list[str]:
    """The versions an environment's image holds: the main one, the canary, the shadows."""
    versions = [deployment.version] + ([deployment.canary.version] if deployment.canary else [])
    return list(dict.fromkeys(versions + list(deployment.shadow)))


def image_key(deployment: Deployment) -> str:
    """The `image_refs` key (and fallback tag) of the image that serves a deployment: `1.0.0` for one
    version, `1.0.0_1.1.0_1.2.0` for an image holding several (main, canary, shadows)."""
    return "_".join(served(deployment))


def image_ref(name: str, key: str, image_refs: dict[str, str] | None, registry: str) -> str:
    """`image_refs[key]` (a digest reference, from `build`); without `image_refs`, `<registry>/<name>:<key>`."""
    if image_refs is None:
        ref = f"{registry}/{name}:{key}"
    elif key in image_refs:
        ref = image_refs[key]
    else:
        raise ModelopsError(f"--images holds no image of {name} with key {key}",
                            hint="build and push the images of every model first (modelops apply --build --push "
                                 "--images-out images.json), then render with that file")
    if not IMAGE_RE.fullmatch(ref):
        raise ModelopsError(f"image reference {ref!r} for {name} {key} is not valid",
                            hint="use registry/name@sha256:<64 hex> or registry/name:tag")
    return ref


def _fill(root: Path, name: str, context: dict) -> str:
    """Render one template and check it is one YAML mapping, so no value can have changed its shape."""
    text = templates.render(f"kubernetes/{name}.yaml.j2", {"header": HEADER, **context}, root, blocks=True)
    documents = list(yaml.load_all(text, Loader=_LOADER))
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ModelopsError(f"templates/kubernetes/{name}.yaml.j2 did not render one YAML mapping",
                            hint="check the template")
    return text


def objects(loaded: LoadedManifest, env: str, target: str, image_refs: dict[str, str] | None,
            registry: str, root: Path) -> dict[str, str]:
    """The files of one model in one environment: {file name: text}; images by tag when `image_refs` is
    None. Pure: writes nothing."""
    m = loaded.manifest
    deployment = m.deployments[env]
    for value, what in ((m.name, "model name"), (env, "environment name")):
        if not _DNS_LABEL.match(value):
            raise ModelopsError(f"{what} {value!r} cannot name Kubernetes objects", file=loaded.display,
                                hint="end it with a letter or a digit (DNS label)")
    if env == GITOPS:
        raise ModelopsError(f"environment name {env!r} is reserved for the Argo CD and Flux objects",
                            file=loaded.display, field=f"deployments.{env}", hint="name the environment otherwise")
    if target == "kserve":
        version = deployment.canary.version if deployment.canary else deployment.version
        image = image_ref(m.name, version, image_refs, registry)
    else:
        version, image = deployment.version, image_ref(m.name, image_key(deployment), image_refs, registry)
    selector = {"app.kubernetes.io/name": m.name, "modelops/environment": env}
    labels = {"app.kubernetes.io/name": m.name, "app.kubernetes.io/version": version,
              "app.kubernetes.io/component": "model-server", "app.kubernetes.io/part-of": "modelops",
              "app.kubernetes.io/managed-by": "modelops", "modelops/environment": env}
    context = {"name": m.name, "env": env, "labels": labels, "selector": selector, "image": image,
               "command": ["modelops", "serve", "/model", "--env", env], "port": PORT, "uid": UID,
               "scale": deployment.scale,
               "canary_percent": deployment.canary.weight if deployment.canary else None}
    header = f"{HEADER} from {loaded.display}: edit that file, not this one."
    kinds = [k for k in KINDS[target] if k != "horizontalpodautoscaler" or deployment.scale.autoscaling]
    return {f"{kind}.yaml": _fill(root, kind, {**context, "header": header}) for kind in kinds}


def notes(loaded: LoadedManifest, env: str, target: str) -> list[str]:
    """What a target cannot express of a deployment (KServe has no shadow traffic)."""
    deployment = loaded.manifest.deployments[env]
    if target == "kserve" and deployment.shadow:
        return [f"{loaded.display}: deployments.{env}.shadow: KServe mirrors no traffic, so "
                f"{', '.join(deployment.shadow)} is not shadowed there (the deployment target does it)"]
    return []


def render(loaded: LoadedManifest, root: Path, out_dir: Path, env: str | None = None,
           image_refs: dict[str, str] | None = None, *, target: str = "deployment") -> list[Path]:
    """Write one model's objects for `env` (default: each of its environments) under `out_dir/<env>/<name>/`,
    remove what it no longer deploys, and refresh each touched environment's kustomization.

    Returns the files of the model and the kustomizations (written or already identical).
    """
    registry = settings.load(root).image_registry
    wanted = [env] if env else sorted(loaded.manifest.deployments)
    rendered = {e: objects(loaded, e, target, image_refs, registry, root)
                for e in wanted if e in loaded.manifest.deployments}
    check_tree(out_dir, {loaded.manifest.name: rendered})
    paths, touched = write(out_dir, loaded.manifest.name, rendered, env)
    for e in touched:
        paths += kustomize(root, out_dir, e)
    return paths


def check_tree(out_dir: Path, rendered: dict[str, dict[str, dict[str, str]]]) -> None:
    """Before anything is written: raise when a file of the tree cannot be written, a file standing where a
    folder goes (or a folder where a file goes). `rendered` is {model: {env: {file: text}}}."""
    envs = {e for by_env in rendered.values() for e in by_env}
    paths = [out_dir / e / name / file for name, by_env in rendered.items() for e, objs in by_env.items()
             for file in objs]
    paths += [out_dir / e / file for e in envs for file in ("kustomization.yaml", "namespace.yaml")]
    paths += [out_dir / GITOPS / "argocd" / f"{e}.yaml" for e in envs]
    paths += [out_dir / GITOPS / "flux" / f"kustomization-{e}.yaml" for e in envs]
    for path in paths:
        check_file(path)


def write(out_dir: Path, name: str, rendered: dict[str, dict[str, str]], env: str | None = None
          ) -> tuple[list[Path], list[str]]:
    """Write one model's files {env: {file: text}}, removing its folders in other environments (in `env`
    only, when given); returns the files and the environments touched, whose kustomization is stale."""
    before = _owned(out_dir.glob(f"*/{name}/*.yaml"))
    elsewhere = {p.parent.parent.name for p in before if env in (None, p.parent.parent.name)}
    touched = sorted(set(rendered) | elsewhere)
    paths = []
    for e in touched:
        paths += _replace(out_dir / e / name, rendered.get(e, {}))
    return paths, touched


def kustomize(root: Path, out_dir: Path, env: str) -> list[Path]:
    """Write `<env>/kustomization.yaml` (and namespace.yaml) listing every rendered file, or remove the
    environment's folder when no model is left in it."""
    folder = out_dir / env
    resources = sorted(p.relative_to(folder).as_posix() for p in _owned(folder.glob("*/*.yaml")))
    if not resources:
        _replace(folder, {})
        return []
    context = {"env": env, "namespace": namespace(env)}
    files = {"namespace.yaml": _fill(root, "namespace", dict(context))}
    files["kustomization.yaml"] = _fill(root, "kustomization", {**context,
                                                                "resources": ["namespace.yaml", *resources]})
    return _replace(folder, files)


def gitops(root: Path, out_dir: Path) -> list[Path]:
    """Write the example Argo CD Applications and Flux objects for every environment under `out_dir`;
    they expect `out_dir` to be the root of the deployment branch (`<env>/` at its top)."""
    conf = settings.load(root)
    envs = sorted(p.parent.name for p in _owned(out_dir.glob("*/kustomization.yaml")))
    common = {"repository": conf.gitops_repository, "branch": conf.gitops_branch}
    argo, flux = {}, {}
    if envs:
        flux["gitrepository.yaml"] = _fill(root, "flux-gitrepository", dict(common))
    for env in envs:
        context = {**common, "env": env, "namespace": namespace(env), "path": env}
        argo[f"{env}.yaml"] = _fill(root, "argocd-application", dict(context))
        flux[f"kustomization-{env}.yaml"] = _fill(root, "flux-kustomization", dict(context))
    paths = _replace(out_dir / GITOPS / "argocd", argo) + _replace(out_dir / GITOPS / "flux", flux)
    _remove_if_empty(out_dir / GITOPS)
    return paths


def prune(out_dir: Path, keep: set[str]) -> None:
    """Remove rendered model folders whose model is not in `keep` (a model deleted from the repository)."""
    for path in sorted(_owned(out_dir.glob("*/*/*.yaml"))):
        if path.parent.name not in keep and path.parent.parent.name != GITOPS:
            _replace(path.parent, {})


def _owned(paths: Iterable[Path]) -> list[Path]:
    """The files among `paths` that this module wrote (their first line is HEADER...)."""
    owned = []
    for path in paths:
        with path.open("rb") as handle:
            if handle.readline().startswith(HEADER.encode()):
                owned.append(path)
    return owned


def _replace(folder: Path, files: dict[str, str]) -> list[Path]:
    """Make `folder` hold exactly `files` among the files this module owns; write only what changed."""
    current = set(_owned(folder.glob("*.yaml"))) if folder.is_dir() else set()
    written = []
    for name, text in sorted(files.items()):
        path = folder / name
        written.append(path)
        current.discard(path)
        if path.is_file() and path.read_text() == text:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    for stale in current:
        stale.unlink()
    _remove_if_empty(folder)
    return written


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
