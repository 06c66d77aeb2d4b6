"""Render the manifests a GitOps engine syncs: every model's objects per environment, written as one tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from modelops.errors import ModelopsError, Problem, dotted
from modelops.kubernetes import objects, tree
from modelops.manifest.loading import LoadedManifest
from modelops.settings import Settings

_DIGEST = r"^sha256:[0-9a-f]{64}$"


class _Image(BaseModel):
    """One image of `build --format json` output: the fields render reads (the others are ignored)."""

    model_config = ConfigDict(strict=True)
    model: str
    version: str
    ref: str
    digest: Annotated[str, StringConstraints(pattern=_DIGEST)] | None = None


class _Images(BaseModel):
    model_config = ConfigDict(strict=True)
    images: list[_Image]


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
    rendered = {m.manifest.name: {e: objects.objects(m, e, target, _model_refs(refs, m), conf, root)
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


def _model_refs(refs: dict[str, dict[str, str]] | None, loaded: LoadedManifest) -> dict[str, str] | None:
    return None if refs is None else refs.get(loaded.manifest.name, {})


def image_refs(path: Path) -> dict[str, dict[str, str]]:
    """{model: {version or image key: ref by digest}} from `build --format json` output."""
    hint = 'expected `modelops build --format json` output: {"images": [{"model", "version", "ref", "digest"}]}'
    try:
        images = _Images.model_validate_json(path.read_bytes()).images
    except ValidationError as exc:
        problems = [Problem(file=str(path), field=dotted(err["loc"]), message=_message(err), hint=hint)
                    for err in exc.errors()]
        raise ModelopsError(problems[0].message, file=str(path), problems=problems) from None
    refs: dict[str, dict[str, str]] = {}
    for image in images:
        ref = image.ref
        if image.digest and "@" not in ref:
            name, _, tag = ref.rpartition(":")
            ref = f"{name if name and '/' not in tag else ref}@{image.digest}"
        refs.setdefault(image.model, {})[image.version] = ref
    return refs


def _message(err: dict) -> str:
    value = err.get("input")
    shown = err["type"] != "missing" and not isinstance(value, dict | list | bytes)
    return err["msg"] + (f" (got {value!r})" if shown else "")
