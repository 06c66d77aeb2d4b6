"""`modelops render --target kubernetes|kserve`: the manifests a GitOps engine syncs to a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from modelops import workspace as repo
from modelops.commands.output import echo_json

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


def render(paths: tuple[str, ...], env: str | None, out: Path, target: str, images: Path | None,
           fmt: str) -> None:
    """Write Kubernetes manifests per model and environment, a kustomization per environment, and example
    Argo CD / Flux objects; files of models or environments that are gone are removed.

    `target` is "kubernetes" (Deployment, Service, HPA, PDB) or "kserve" (an InferenceService).
    PATHS are model folders (default: every model, and then the tree is pruned to them).
    """
    from modelops import settings
    from modelops.errors import ModelopsError
    from modelops.kubernetes import objects as kubernetes
    from modelops.manifest.loading import load
    from modelops.manifest.validate import validate

    root = repo.root()
    folders = repo.model_folders(paths, root)
    problems = validate(folders, root, offline=True)
    if problems:
        raise ModelopsError(problems[0].message, file=problems[0].file, problems=problems)
    loaded = [load(folder, root) for folder in folders]
    envs = sorted({e for m in loaded for e in m.manifest.deployments})
    if env and env not in envs:
        raise ModelopsError(f"no model deploys to {env!r}",
                            hint=f"environments are: {', '.join(envs) or 'none'}")
    refs = _image_refs(images) if images else None
    registry = settings.load(root).image_registry
    # everything is rendered in memory first: a bad value writes nothing
    rendered = {m.manifest.name: {e: kubernetes.objects(m, e, target,
                                                        None if refs is None else refs.get(m.manifest.name, {}),
                                                        registry, root)
                                  for e in sorted(m.manifest.deployments) if env in (None, e)}
                for m in loaded}
    out = out if out.is_absolute() else Path.cwd() / out
    kubernetes.check_tree(out, rendered)
    files: list[Path] = []
    touched: set[str] = set()
    for name, environments in rendered.items():
        written, stale = kubernetes.write(out, name, environments, env)
        files += written
        touched.update(stale)
    if not paths:
        kubernetes.prune(out, set(rendered))
        touched.update(p.name for p in out.glob("*") if p.is_dir() and p.name != kubernetes.GITOPS)
    for e in sorted(touched):
        files += kubernetes.kustomize(root, out, e)
    files = sorted(set(files + kubernetes.gitops(root, out)))
    notes = [n for m in loaded for e in sorted(m.manifest.deployments) if env in (None, e)
             for n in kubernetes.notes(m, e, target)]
    shown = [_shown(p) for p in files]
    if fmt == "json":
        echo_json({"files": shown, "notes": notes})
        return
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{len(files)} file(s) rendered for {len(loaded)} model(s) in {_shown(out)}")


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _image_refs(path: Path) -> dict[str, dict[str, str]]:
    """{model: {version or image key: ref by digest}} from `build --format json` output."""
    from modelops.errors import ModelopsError, Problem
    from modelops.manifest import safe_yaml

    hint = 'expected `modelops build --format json` output: {"images": [{"model", "version", "ref", "digest"}]}'
    try:
        images = _Images.model_validate_json(path.read_bytes()).images
    except ValidationError as exc:
        problems = [Problem(file=str(path), field=safe_yaml.dotted(err["loc"]), message=_message(err), hint=hint)
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
