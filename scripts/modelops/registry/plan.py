"""The plan: `diff(desired, actual)` lists the actions that make the registry match git, and the drift.

Pure: no I/O. A version registered with plain MLflow (no modelops tag) whose files have the digest of a
manifest version is adopted (tagged, never uploaded again): that is how `modelops import` hands a registry over.
Drift is whatever differs from git without git having asked for it: an alias moved by
hand (it differs from what apply last set), a version tag edited or removed, a registered version whose
artifact digest or method differs from git (blocking: apply refuses: a registered version never changes),
and models that git no longer lists (reported, never deleted). Versions git no longer lists are kept by design:
notes, not drift.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from modelops.errors import Problem
from modelops.manifest.model import METHODS
from modelops.registry.projection import (
    COMPLETE,
    DEPLOYMENTS,
    METHOD,
    PROVENANCE,
    SHA256,
    VERSION,
    ActualModel,
    ActualVersion,
    DesiredModel,
    DesiredVersion,
)

# Execution order of action kinds.
KINDS = ("create-model", "delete-incomplete", "register", "adopt-version", "finish-version", "update-version",
         "set-alias", "delete-alias", "update-model", "build-image")


@dataclass(frozen=True)
class Action:
    """One change to the registry. `version` is semantic; `number` is MLflow's version number; for
    `update-model`, `old` is the `modelops.deployments` value it replaces."""

    kind: str
    model: str
    version: str = ""
    number: str = ""
    alias: str = ""
    old: str = ""
    new: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    envs: tuple[str, ...] = ()  # build-image: the environments the image serves

    def text(self) -> str:
        where = f"{self.model} {self.version}".strip()
        return {
            "create-model": f"create registered model {self.model}",
            "delete-incomplete": f"delete half-registered {where} (MLflow version {self.number})",
            "register": f"register {where} (sha256 {self.new[:12]}…)",
            "adopt-version": f"adopt {where} (MLflow version {self.number}, registered outside modelops): "
                             "tag it, no upload",
            "finish-version": f"finish half-registered {where} (MLflow version {self.number})",
            "update-version": f"update {where} (MLflow version {self.number}): {self.changes()}",
            "set-alias": f"{'move' if self.old else 'set'} alias {self.model}@{self.alias}: "
                         f"{self.old + ' -> ' if self.old else ''}{self.new}",
            "delete-alias": f"delete alias {self.model}@{self.alias} (was {self.old})",
            "update-model": f"update registered model {self.model}: {self.changes()}",
            "build-image": f"build image {self.new}{' for ' + ', '.join(self.envs) if self.envs else ''} "
                           f"({'recorded: ' + self.old if self.old else 'no image recorded'})",
        }[self.kind]

    def changes(self) -> str:
        """What the update sets; a change of deployments is described per environment."""
        described = _deployment_changes(self.old, self.tags[DEPLOYMENTS]) if DEPLOYMENTS in self.tags else []
        changed = [k for k in sorted(self.tags) if k != DEPLOYMENTS or not described]
        changed += ["description"] if self.description is not None else []
        return "; ".join(([f"set {', '.join(changed)}"] if changed else []) + described)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None, {}, ())}


@dataclass(frozen=True)
class Drift:
    """A difference between the registry and git that git did not ask for."""

    kind: str  # alias | tag | digest | method | not-in-git | duplicate
    model: str
    subject: str
    message: str
    blocking: bool = False

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...]
    conflicts: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()  # information, neither action nor drift (a kept version, a held lock)

    def to_json(self) -> dict:
        return {"actions": [a.to_json() for a in self.actions], "drift": [d.to_json() for d in self.drift],
                "notes": list(self.notes)}


def diff(desired: list[DesiredModel], actual: dict[str, ActualModel], managed: set[str] | None = None) -> Plan:
    """The plan for `desired` models against `actual` (by name). `managed`: every managed model in the
    registry, to report those git no longer lists (None when only some models are planned)."""
    actions: list[Action] = []
    drift: list[Drift] = []
    conflicts: list[Problem] = []
    notes: list[str] = []
    for model in desired:
        a, d, c = _diff_model(model, actual.get(model.name), notes)
        actions += a
        drift += d
        conflicts += c
    known = {m.name for m in desired}
    for name in sorted((managed or set()) - known):
        drift.append(Drift("not-in-git", name, name, f"registered model {name} has no folder in git "
                                                     "(kept; delete it in MLflow if it is retired)"))
    actions.sort(key=lambda a: (a.model, KINDS.index(a.kind)))
    return Plan(tuple(actions), tuple(drift), tuple(conflicts), tuple(notes))


def _diff_model(model: DesiredModel, actual: ActualModel | None, notes: list[str]
                ) -> tuple[list[Action], list[Drift], list[Problem]]:
    name = model.name
    if actual is None:
        actions = [Action("create-model", name, tags=model.model_tags(), description=model.description)]
        actions += [_register(model, v) for v in model.versions]
        actions += [Action("set-alias", name, alias=a, new=v) for a, v in sorted(model.aliases.items())]
        actions.append(Action("update-model", name, tags={DEPLOYMENTS: model.deployments}))
        return actions, [], []
    actions, drift, conflicts, numbers = _diff_versions(model, actual, notes)
    actions += _diff_aliases(model, actual, numbers, drift)
    tags = {k: v for k, v in {**model.model_tags(), DEPLOYMENTS: model.deployments}.items()
            if actual.tags.get(k) != v}
    description = model.description if actual.description != model.description else None
    if tags or description is not None:
        old = actual.tags.get(DEPLOYMENTS, "") if DEPLOYMENTS in tags else ""
        actions.append(Action("update-model", name, old=old, tags=tags, description=description))
    return actions, drift, conflicts


def _register(model: DesiredModel, version: DesiredVersion) -> Action:
    return Action("register", model.name, version=version.version, new=version.sha256,
                  tags=model.version_tags(version), description=version.description)


def _diff_versions(model: DesiredModel, actual: ActualModel, notes: list[str]
                   ) -> tuple[list[Action], list[Drift], list[Problem], dict[str, str]]:
    """Match git's versions to registered ones; `numbers` maps MLflow version numbers to semver. Registered
    versions git no longer lists are added to `notes`."""
    name = model.name
    actions: list[Action] = []
    drift: list[Drift] = []
    conflicts: list[Problem] = []
    numbers: dict[str, str] = {}
    ordered = sorted(actual.versions, key=lambda v: int(v.number))
    wanted = {v.version for v in model.versions}
    claimed: set[str] = set()
    for version in model.versions:
        same = [v for v in ordered if v.semver == version.version]
        complete = [v for v in same if v.complete]
        incomplete = [v for v in same if not v.complete]
        if not same:
            renamed = next((v for v in ordered if v.complete and v.semver and v.semver not in wanted
                            and v.tags.get(SHA256) == version.sha256 and _answers(v, model.method)), None)
            if renamed is not None:
                claimed.add(renamed.number)
                numbers[renamed.number] = renamed.semver
                conflicts.append(_renamed(model, version, renamed))
                continue
            # a version whose modelops.version tag was removed is known by its digest
            complete = [v for v in ordered if v.complete and not v.semver and v.number not in claimed
                        and v.tags.get(SHA256) == version.sha256 and _answers(v, model.method)][:1]
            adopted = next((v for v in ordered if v.adoptable and v.number not in claimed
                            and v.files_sha256 == version.sha256 and _answers(v, model.method)), None)
            if not complete and adopted is not None:
                claimed.add(adopted.number)
                numbers[adopted.number] = version.version
                actions.append(_adopt(model, version, adopted))
                continue
        keep = complete[0] if complete else next((v for v in incomplete if v.tags.get(SHA256) == version.sha256
                                                  and _answers(v, model.method)), None)
        for v in same:
            if v is not keep and not v.complete:
                actions.append(Action("delete-incomplete", name, version=version.version, number=v.number))
            elif v is not keep:
                drift.append(Drift("duplicate", name, version.version, f"{name} {version.version} is registered "
                                   f"again as MLflow version {v.number} (kept {keep.number})"))
        if keep is None:
            actions.append(_register(model, version))
            continue
        claimed.add(keep.number)
        numbers[keep.number] = version.version
        if not keep.complete:
            tags = {**model.version_tags(version), COMPLETE: "true"}
            actions.append(Action("finish-version", name, version=version.version, number=keep.number,
                                  tags={k: v for k, v in tags.items() if keep.tags.get(k) != v},
                                  description=version.description))
            continue
        if keep.tags.get(SHA256) != version.sha256:
            drift.append(Drift("digest", name, version.version, f"{name} {version.version} is registered with "
                               f"artifact sha256 {keep.tags.get(SHA256)}; the manifest says {version.sha256}",
                               blocking=True))
            conflicts.append(_digest_conflict(model, version, keep))
            continue
        if not _answers(keep, model.method):
            drift.append(Drift("method", name, version.version, f"{name} {version.version} (MLflow version "
                               f"{keep.number}) answers {keep.method}; the manifest says {model.method}",
                               blocking=True))
            conflicts.append(_method_conflict(model, version, keep))
            continue
        actions += _version_repair(model, version, keep, drift)
    for v in ordered:
        if v.number in claimed or (v.semver in wanted and not v.complete):
            continue
        if not v.complete and v.semver:
            actions.append(Action("delete-incomplete", name, version=v.semver, number=v.number))
        elif v.semver not in wanted:
            label = v.semver or "(no modelops.version tag)"
            notes.append(f"{name} {label} (MLflow version {v.number}) is not in the manifest (kept, never deleted)")
    return actions, drift, conflicts, numbers


def _answers(registered: ActualVersion, method: str) -> bool:
    """Whether a registered version answers `method`, or is not known to answer another one."""
    return registered.method in ("", method)


def _adopt(model: DesiredModel, version: DesiredVersion, registered: ActualVersion) -> Action:
    """Tag a version registered with plain MLflow as the manifest's `version` (its files are git's artifact)."""
    description = version.description if registered.description != version.description else None
    return Action("adopt-version", model.name, version=version.version, number=registered.number,
                  tags={**model.version_tags(version), COMPLETE: "true"}, description=description)


def _digest_conflict(model: DesiredModel, version: DesiredVersion, registered: ActualVersion) -> Problem:
    """The refusal of a registered version whose sha256 tag differs from the manifest: git changed the artifact,
    or (when the files apply uploaded carry git's sha256) the tag was edited in the registry."""
    tag, where = registered.tags.get(SHA256), f"{model.name} {version.version} (MLflow version {registered.number})"
    if registered.uploaded_sha256 == version.sha256:
        return Problem(file=model.display, line=version.line, field="sha256",
                       message=f"{where}: the registry's tag {SHA256} was changed outside git to {tag}; its "
                               f"uploaded files and the manifest have {version.sha256}",
                       hint=f"restore the tag {SHA256} of MLflow version {registered.number} to {version.sha256} "
                            "in MLflow, or register the artifact as a new version")
    return Problem(file=model.display, line=version.line, field="sha256",
                   message=f"{model.name} {version.version} is registered with artifact sha256 {tag}; the "
                           f"manifest says {version.sha256}",
                   hint="a registered version never changes: bump the version (list the new artifact as a new "
                        "version) and restore this one's sha256")


def _method_conflict(model: DesiredModel, version: DesiredVersion, registered: ActualVersion) -> Problem:
    """The refusal of a registered version that answers another method than the manifest's."""
    tagged = registered.tags.get(METHOD) in METHODS
    back = f"set method back to {registered.method}" if registered.method in METHODS else "set method back"
    return Problem(file=model.display, line=model.method_line, field="method",
                   message=f"{model.name} {version.version} (MLflow version {registered.number}) is registered "
                           f"answering {registered.method} ({'its tag ' + METHOD if tagged else 'its MLmodel'}); "
                           f"the manifest says {model.method}",
                   hint=f"a registered version never changes: to serve {model.method}, list the artifact again as "
                        f"a new version (modelops release) in place of this one (it stays in MLflow), or {back}"
                        + (f"; if {METHOD} was edited by hand, restore it" if tagged else ""))


def _renamed(model: DesiredModel, version: DesiredVersion, registered: ActualVersion) -> Problem:
    """The refusal of a manifest version that carries the artifact of a registered version git no longer lists."""
    return Problem(file=model.display, line=version.entry_line, field=f"versions[{version.index}].version",
                   message=f"{version.version} has the artifact of {registered.semver}, registered as MLflow "
                           f"version {registered.number}: a registered version is never renamed",
                   hint=f"keep {registered.semver}, or register a new artifact as a new version")


def _version_repair(model: DesiredModel, version: DesiredVersion, keep: ActualVersion,
                    drift: list[Drift]) -> list[Action]:
    """The tags a kept complete version lacks (its semantic version restored if edited); METHOD, missing on a
    version registered before that tag or removed by hand, is the method its MLmodel answers (the manifest's)."""
    expected = model.version_tags(version)
    tags = {VERSION: version.version} if keep.semver != version.version else {}
    tags |= {k: expected[k] for k in PROVENANCE if k not in keep.tags}
    if keep.tags.get(METHOD) not in METHODS and keep.method:
        tags[METHOD] = keep.method
    for key in tags:
        was = f"was {keep.tags[key]!r}" if key in keep.tags else "was removed"
        was = f"{'is missing' if key not in keep.tags else was} (its MLmodel answers {keep.method})" \
            if key == METHOD else was
        drift.append(Drift("tag", model.name, version.version,
                           f"{model.name} {version.version} (MLflow version {keep.number}): tag {key} {was}"))
    description = version.description if keep.description != version.description else None
    if not tags and description is None:
        return []
    return [Action("update-version", model.name, version=version.version, number=keep.number, tags=tags,
                   description=description)]


def _diff_aliases(model: DesiredModel, actual: ActualModel, numbers: dict[str, str],
                  drift: list[Drift]) -> list[Action]:
    applied = actual.applied_aliases
    actions = []

    semvers = {v.number: v.semver for v in actual.versions if v.semver} | numbers

    def label(number: str | None) -> str:
        return "" if number is None else semvers.get(number) or f"MLflow version {number}"

    by_semver = {semver: number for number, semver in numbers.items()}
    for alias in sorted(set(model.aliases) | set(actual.aliases) | set(applied or {})):
        want = model.aliases.get(alias)
        have = actual.aliases.get(alias)
        have_label = label(have)
        if applied is not None and have_label != applied.get(alias, ""):
            was = f"points at {have_label}" if have else "was deleted"
            last = applied.get(alias) or "nothing"
            drift.append(Drift("alias", model.name, alias, f"{model.name}@{alias} {was}; apply last set {last}"))
        if want is None and have is not None:
            actions.append(Action("delete-alias", model.name, alias=alias, old=have_label))
        elif want is not None and (have is None or by_semver.get(want) != have):
            actions.append(Action("set-alias", model.name, alias=alias, old=have_label, new=want,
                                  number=by_semver.get(want, "")))
    return actions


def _deployment_changes(old: str, new: str) -> list[str]:
    """What changed between two `modelops.deployments` values, per environment (`production canary 1.1.0
    weight 10 -> 30`); empty when either is not a JSON object. No old value means every environment is added."""
    try:
        before, after = json.loads(old) if old else {}, json.loads(new)
    except ValueError:
        return []
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    out = []
    for env in sorted(before.keys() | after.keys()):
        was, now = before.get(env), after.get(env)
        if not isinstance(was, dict) or not isinstance(now, dict):
            out.append(f"{env} added ({_describe(now)})" if was is None else
                       f"{env} removed (was {_describe(was)})" if now is None else
                       f"{env} {_describe(was)} -> {_describe(now)}")
            continue
        for key in sorted(was.keys() | now.keys(), key=lambda k: (_ORDER.index(k) if k in _ORDER else 3, k)):
            a, b = was.get(key), now.get(key)
            if a == b:
                continue
            if key == "canary" and a and b and a.get("version") == b.get("version"):
                out.append(f"{env} canary {a.get('version')} weight {a.get('weight')} -> {b.get('weight')}")
            else:
                out.append(f"{env} {key} {_value(a)} -> {_value(b)}")
    return out


_ORDER = ("version", "canary", "shadow")


def _describe(deployment: object) -> str:
    """`version 1.0.0, canary 1.1.0 weight 10, shadow 1.2.0`."""
    if not isinstance(deployment, dict):
        return _value(deployment)
    return ", ".join(f"{key} {_value(deployment[key])}" for key in sorted(
        deployment, key=lambda k: (_ORDER.index(k) if k in _ORDER else 3, k)))


def _value(value: object) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict) and set(value) == {"version", "weight"}:
        return f"{value['version']} weight {value['weight']}"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
