"""The registry verbs as plain functions (the CLI parses, calls one of these, prints)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelops import manifest, state
from modelops.errors import ModelopsError
from modelops.plan import Action, Plan, diff
from modelops.registry import Registry, errors
from modelops.settings import Settings
from modelops.state import DesiredModel
from modelops.validate import validate


def desired(folders: list[Path], root: Path) -> list[DesiredModel]:
    """Git's side: the validated manifests (offline: schema, references, local artifact digests)."""
    problems = validate(folders, root, offline=True)
    if problems:
        raise ModelopsError(problems[0].message, file=problems[0].file, problems=problems)
    commit = state.git_commit(root)
    return [state.desired(manifest.load(folder, root), commit) for folder in folders]


def plan(folders: list[Path], root: Path, settings: Settings, *, every_model: bool) -> Plan:
    """What apply would do; `every_model` also reports managed models that git no longer lists."""
    models = desired(folders, root)
    registry = Registry(settings)
    with errors(settings):
        actual, managed = registry.read(m.name for m in models)
    return diff(models, actual, managed if every_model else None)


def apply(folders: list[Path], root: Path, settings: Settings, *, every_model: bool,
          done: Callable[[Action], None] = lambda action: None) -> Plan:
    """Reconcile the registry to git; refuses before any write when a registered version changed.

    Each model with work is locked, read afresh and planned again, so two applies at once never
    register a version twice. `done` is called after each action carried out.
    """
    models = {m.name: m for m in desired(folders, root)}
    registry = Registry(settings)
    with errors(settings):
        actual, managed = registry.read(models)
        first = diff(list(models.values()), actual, managed if every_model else None)
        refuse(first)
        carried: list[Action] = []
        for name in dict.fromkeys(a.model for a in first.actions):
            with registry.lock(name):
                fresh = registry.read_one(name)
                again = diff([models[name]], {name: fresh} if fresh else {})
                refuse(again)
                numbers: dict[str, str] = {}
                for action in again.actions:
                    registry.execute(action, models[name], numbers)
                    carried.append(action)
                    done(action)
    return Plan(tuple(carried), first.drift)


def refuse(plan: Plan) -> None:
    """Raise when the plan changes an already-registered version."""
    if plan.conflicts:
        first = plan.conflicts[0]
        raise ModelopsError(first.message, file=first.file, line=first.line, field=first.field, hint=first.hint,
                            problems=list(plan.conflicts))
