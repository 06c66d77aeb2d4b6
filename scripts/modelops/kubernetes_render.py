"""`modelops render --target kubernetes|kserve`: the manifests a GitOps engine syncs to a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelops import repo
from modelops.output import echo_json


def render(paths: tuple[str, ...], env: str | None, out: Path, target: str, images: Path | None,
           fmt: str) -> None:
    """Write Kubernetes manifests per model and environment, a kustomization per environment, and example
    Argo CD / Flux objects; files of models or environments that are gone are removed.

    `target` is "kubernetes" (Deployment, Service, HPA, PDB) or "kserve" (an InferenceService).
    PATHS are model folders (default: every model, and then the tree is pruned to them).
    """
    from modelops import kubernetes, settings
    from modelops.errors import ModelopsError
    from modelops.manifest import load
    from modelops.validate import validate

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
    refs = _image_refs(images) if images else {}
    registry = settings.load(root).image_registry
    # everything is rendered in memory first: a bad value writes nothing
    rendered = {m.manifest.name: {e: kubernetes.objects(m, e, target, refs.get(m.manifest.name, {}),
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
    from modelops.errors import ModelopsError

    try:
        images = json.loads(path.read_text())["images"]
        refs: dict[str, dict[str, str]] = {}
        for image in images:
            ref, digest = str(image["ref"]), str(image.get("digest") or "")
            if digest and "@" not in ref:
                name, _, tag = ref.rpartition(":")
                ref = f"{name if name and '/' not in tag else ref}@{digest}"
            refs.setdefault(str(image["model"]), {})[str(image["version"])] = ref
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelopsError(f"not the output of `modelops build --format json` ({exc})", file=str(path),
                            hint='expected {"images": [{"model", "version", "ref", "digest"}]}') from None
    return refs
