"""Render the manifests a GitOps engine syncs: every model's objects per environment, written as one tree."""

from __future__ import annotations

from pathlib import Path

from modelops.errors import ModelopsError
from modelops.kubernetes import objects, tree
from modelops.manifest.loading import LoadedManifest
from modelops.settings import Settings


def render(root: Path, conf: Settings, manifests: list[LoadedManifest], out: Path, *, target: str,
           env: str | None = None, refs: dict[str, dict[str, str]] | None = None, prune: bool = False
           ) -> tuple[list[Path], list[str]]:
    """Write each model's objects (for `env`, or every environment), a kustomization per environment and
    example Argo CD / Flux objects under `out`; with `prune`, files of models that are gone are removed.

    `target` is "deployment" (Deployment, Service, HPA, PDB) or "kserve" (an InferenceService); `refs`
    ({model: {image key: reference by digest}}) deploys images by digest. Everything is rendered in memory
    before the first write, so a bad value writes nothing. Returns the files and the notes (what a target
    cannot express).
    """
    envs = sorted({e for m in manifests for e in m.manifest.deployments})
    if env and env not in envs:
        raise ModelopsError(f"no model deploys to {env!r}", hint=f"environments are: {', '.join(envs) or 'none'}")
    rendered = {m.manifest.name: {e: objects.objects(m, e, target, refs, conf.image_registry, root)
                                  for e in sorted(m.manifest.deployments) if env in (None, e)}
                for m in manifests}
    tree.check_tree(out, rendered)
    files: list[Path] = []
    touched: set[str] = set()
    for name, environments in rendered.items():
        written, stale = tree.write(out, name, environments, env)
        files += written
        touched.update(stale)
    if prune:
        tree.prune(out, set(rendered))
        touched.update(p.name for p in out.glob("*") if p.is_dir() and p.name != objects.GITOPS)
    for e in sorted(touched):
        files += tree.kustomize(root, out, e)
    files = sorted(set(files + tree.gitops(root, out, conf)))
    notes = [n for m in manifests for e in sorted(m.manifest.deployments) if env in (None, e)
             for n in objects.notes(m, e, target)]
    return files, notes
