"""The tree of Kubernetes manifests that Argo CD or Flux syncs, written so that rendering twice changes nothing.

Layout written under the output folder (by default `deploy/`):
  <env>/kustomization.yaml      the environment's entry point: its namespace and every file below, sorted
  <env>/namespace.yaml          the namespace `models-<env>`
  <env>/<model>/*.yaml          Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget
                                (and a CronJob where deployments.<env>.batch asks for one)
                                (or one KServe InferenceService with `--target kserve`)
  gitops/argocd/<env>.yaml      an Argo CD Application syncing <env>/
  gitops/flux/*.yaml            a Flux GitRepository and one Kustomization per environment
Every file starts with HEADER; only such files are ever replaced or deleted, so rendering twice gives the
same bytes and a model or environment that disappears from the manifests disappears from the tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modelops.files import check_file, owned, remove_if_empty, replace_owned
from modelops.kubernetes import objects
from modelops.kubernetes.objects import GITOPS, HEADER
from modelops.settings import Settings


def check_tree(out_dir: Path, rendered: dict[str, dict[str, dict[str, str]]]) -> None:
    """Before anything is written: raise when a file of the tree cannot be written, a file standing where a
    folder goes (or a folder where a file goes), or a file of the tree's name that `modelops render` did not
    write. `rendered` is {model: {env: {file: text}}}."""
    envs = {e for by_env in rendered.values() for e in by_env}
    paths = [out_dir / e / name / file for name, by_env in rendered.items() for e, objs in by_env.items()
             for file in objs]
    paths += [out_dir / e / file for e in envs for file in ("kustomization.yaml", "namespace.yaml")]
    paths += [out_dir / GITOPS / "argocd" / f"{e}.yaml" for e in envs]
    paths += [out_dir / GITOPS / "flux" / f"kustomization-{e}.yaml" for e in envs]
    paths += [out_dir / GITOPS / "flux" / "gitrepository.yaml"] if envs else []
    for path in paths:
        check_file(path, HEADER)


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
    context = {"env": env, "namespace": objects.namespace(env)}
    files = {"namespace.yaml": objects.fill(root, "namespace", dict(context))}
    files["kustomization.yaml"] = objects.fill(root, "kustomization", {**context,
                                                                "resources": ["namespace.yaml", *resources]})
    return _replace(folder, files)


def gitops(root: Path, out_dir: Path, conf: Settings) -> list[Path]:
    """Write the example Argo CD Applications and Flux objects for every environment under `out_dir`;
    they expect `out_dir` to be the root of the deployment branch (`<env>/` at its top)."""
    envs = sorted(p.parent.name for p in _owned(out_dir.glob("*/kustomization.yaml")))
    common = {"repository": conf.gitops_repository, "branch": conf.gitops_branch}
    argo, flux = {}, {}
    if envs:
        flux["gitrepository.yaml"] = objects.fill(root, "flux-gitrepository", dict(common))
    for env in envs:
        context = {**common, "env": env, "namespace": objects.namespace(env), "path": env}
        argo[f"{env}.yaml"] = objects.fill(root, "argocd-application", dict(context))
        flux[f"kustomization-{env}.yaml"] = objects.fill(root, "flux-kustomization", dict(context))
    paths = _replace(out_dir / GITOPS / "argocd", argo) + _replace(out_dir / GITOPS / "flux", flux)
    remove_if_empty(out_dir / GITOPS)
    return paths


def prune(out_dir: Path, keep: set[str]) -> None:
    """Remove rendered model folders whose model is not in `keep` (a model deleted from the repository)."""
    for path in sorted(_owned(out_dir.glob("*/*/*.yaml"))):
        if path.parent.name not in keep and path.parent.parent.name != GITOPS:
            _replace(path.parent, {})


def _owned(paths: Iterable[Path]) -> list[Path]:
    """The files among `paths` that this module wrote (their first line is HEADER...)."""
    return owned(paths, HEADER)


def _replace(folder: Path, files: dict[str, str]) -> list[Path]:
    """Make `folder` hold exactly `files` among the files this module owns; write only what changed."""
    return replace_owned(folder, files, HEADER)
