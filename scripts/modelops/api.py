"""The registry verbs as plain functions (the CLI parses, calls one of these, prints)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import ModelopsError
from modelops.images import context
from modelops.manifest.loading import load as load_manifest
from modelops.manifest.validate import validate
from modelops.registry import image_tags as imagetags
from modelops.registry import projection as state
from modelops.registry.client import Registry, errors
from modelops.registry.plan import Action, Plan, diff
from modelops.registry.projection import ActualModel, DesiredModel
from modelops.settings import Settings

if TYPE_CHECKING:
    from modelops.images.build import Image


def desired(folders: list[Path], root: Path) -> list[DesiredModel]:
    """Git's side: the validated manifests (offline: schema, references, local artifact digests)."""
    problems = validate(folders, root, offline=True)
    if problems:
        raise ModelopsError(problems[0].message, file=problems[0].file, problems=problems)
    commit = state.git_commit(root)
    return [state.desired(load_manifest(folder, root), commit) for folder in folders]


def plan(folders: list[Path], root: Path, settings: Settings, *, every_model: bool,
         images: bool | None = False) -> Plan:
    """What apply would do; `every_model` also reports managed models that git no longer lists.

    `images`: also list the runner images with no recorded reference (`build-image`, done by
    `apply --build --push`); None lists them when the registry records images for any planned model.
    """
    models = desired(folders, root)
    registry = Registry(settings)
    with errors(settings):
        actual, managed, locks = registry.read(m.name for m in models)
    result = _diff(registry, models, actual, managed if every_model else None)
    held = tuple(f"{name} is locked by another apply: {holder} (apply waits for it)"
                 for name, holder in sorted(locks.items()))
    result = replace(result, notes=result.notes + held)
    if images is None:
        images = any(imagetags.manages_images(actual.get(m.name)) for m in models)
    if not images:
        return result
    image_registry = context.registry(root)
    builds = [a for m in models for a in imagetags.missing(m, actual.get(m.name), image_registry)]
    return replace(result, actions=result.actions + tuple(builds))


def _diff(registry: Registry, models: list[DesiredModel], actual: dict[str, ActualModel],
          managed: set[str] | None = None) -> Plan:
    """`diff`; a model with a digest conflict is diffed again knowing the sha256 of the files apply uploaded,
    which tells a registry tag edited by hand from an artifact changed in git."""
    result = diff(models, actual, managed)
    conflicting = {d.model for d in result.drift if d.kind == "digest"}
    if not conflicting:
        return result
    actual = {name: registry.with_uploaded(m) if name in conflicting else m for name, m in actual.items()}
    return diff(models, actual, managed)


def apply(folders: list[Path], root: Path, settings: Settings, *, every_model: bool,
          done: Callable[[Action], None] = lambda action: None, log: Callable[[str], None] = lambda line: None
          ) -> Plan:
    """Reconcile the registry to git; refuses before any write when a registered version changed.

    Each model with work is locked, read afresh and planned again, so two applies at once never
    register a version twice. `done` is called after each action carried out; `log` hears of waits for a
    lock another apply holds.
    """
    models = {m.name: m for m in desired(folders, root)}
    registry = Registry(settings)
    with errors(settings):
        actual, managed, _ = registry.read(models)
        first = _diff(registry, list(models.values()), actual, managed if every_model else None)
        refuse(first)
        carried: list[Action] = []
        for name in dict.fromkeys(a.model for a in first.actions):
            with registry.lock(name, log):
                fresh = registry.read_one(name)
                again = _diff(registry, [models[name]], {name: fresh} if fresh else {})
                refuse(again)
                numbers: dict[str, str] = {}
                for action in again.actions:
                    registry.execute(action, models[name], numbers)
                    carried.append(action)
                    done(action)
    return Plan(tuple(carried), first.drift, notes=first.notes)


def apply_images(folders: list[Path], root: Path, settings: Settings, *, push: bool, log: Callable[[str], None],
                 done: Callable[[Action], None] = lambda action: None) -> tuple[list[Image], list[Action]]:
    """Build (and push) every runner image of each model, then record each pushed image on the registry.

    Run after `apply`. A model's tags are written only once all its images are pushed, each with the
    registry's digest, and only where they differ: a second run with nothing changed writes nothing.
    Returns the images (as `build --format json` lists them) and the tag updates carried out.
    """
    from modelops.images.build import build

    models = desired(folders, root)
    registry = Registry(settings)
    built: list[Image] = []
    recorded: list[Action] = []
    for model in models:
        loaded = load_manifest(model.folder, root)
        images = build(loaded, root, context.targets(loaded.manifest), push_images=push, log=log)
        built += images
        if not push:
            continue
        with errors(settings), registry.lock(model.name, log):
            actual = registry.read_one(model.name)
            if actual is None:
                raise ModelopsError(f"{model.name} is not registered", hint="run `modelops apply` first")
            for action in imagetags.record(model, actual, images):
                registry.execute(action, model, {})
                recorded.append(action)
                done(action)
    return built, recorded


def refuse(plan: Plan) -> None:
    """Raise when the plan changes an already-registered version."""
    if plan.conflicts:
        first = plan.conflicts[0]
        raise ModelopsError(first.message, file=first.file, line=first.line, field=first.field, hint=first.hint,
                            problems=list(plan.conflicts))
