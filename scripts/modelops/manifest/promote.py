"""`modelops promote`: change what one environment serves (its version, canary, shadows), or roll it back to
what it served before its last committed change, by editing `deployments:` in place."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.manifest import history
from modelops.manifest.edit import EditResult, ManifestEditor
from modelops.manifest.serving import Serving
from modelops.manifest.validate import Fetch


@dataclass(frozen=True)
class Promotion:
    """What is asked of one environment; None (or False) leaves that part as it is."""

    version: str | None = None  # the version answering; the canary's version promotes the canary
    canary: str | None = None
    weight: int | None = None  # with canary, or alone: the existing canary's new share
    shadow: tuple[str, ...] | None = None  # () removes every shadow
    end_canary: bool = False
    rollback: bool = False  # what the environment served before its last committed change (git history)


def promote(root: Path, folder: Path, env: str, asked: Promotion, fetch: Fetch, *, dry_run: bool = False
            ) -> EditResult:
    """Edit `deployments.<env>` of the manifest in `folder` as `asked`, checked as validate checks it
    (offline: the versions themselves do not change) before it is written; nothing to change is no write."""
    editor = ManifestEditor(folder, root)
    deployments = editor.loaded.manifest.deployments
    current = Serving.of(deployments[env]) if env in deployments else None
    if env not in deployments and (close := difflib.get_close_matches(env, list(deployments), n=1, cutoff=0.75)):
        raise ModelopsError(f"{env} is not an environment of {editor.display}", field="ENV",
                            hint=f"did you mean {close[0]!r}? (promote adds an environment only when its name "
                                 "is not that close to an existing one)")
    if asked.rollback:
        if asked != Promotion(rollback=True):
            raise ModelopsError("--rollback goes back to what the environment served before: it takes no "
                                "VERSION, --canary, --weight, --shadow or --end-canary", field="--rollback")
        target = history.previous(history.history(root, folder.name), env)
        notes = (f"{env} rolled back to what it served before its last committed change: {target.describe()}",)
    else:
        target, notes = _requested(current, env, asked)
    if target == current:
        return editor.result(False, (f"{env} already serves {target.describe()}",))
    editor.serve(env, target)
    editor.check(fetch, offline=True)
    written = not dry_run and editor.write()
    was = f" (was {current.describe()})" if current else " (a new environment)"
    return editor.result(written, (*notes, f"{env} serves {target.describe()}{was}"))


def _requested(current: Serving | None, env: str, asked: Promotion) -> tuple[Serving, tuple[str, ...]]:
    """The serving `asked` makes of `current`, and what it did that was not asked in so many words."""
    if asked.end_canary and (asked.canary or asked.weight is not None):
        raise ModelopsError("--end-canary removes the canary: it takes no --canary or --weight", field="--end-canary")
    if current is None and asked.version is None:
        raise ModelopsError(f"{env} is not deployed yet: name the VERSION it serves", field="VERSION",
                            hint=f"modelops promote MODEL {env} VERSION")
    if asked == Promotion():
        raise ModelopsError("nothing asked: name a VERSION, or --canary/--weight/--shadow/--end-canary/--rollback",
                            field="VERSION")
    base = current or Serving(asked.version or "")
    canary = None if asked.end_canary else base.canary
    if asked.canary:
        weight = asked.weight if asked.weight is not None else canary[1] if canary else None
        if weight is None:
            raise ModelopsError(f"a canary takes a share of the traffic: add --weight (1-99) for {asked.canary}",
                                field="--weight")
        canary = (asked.canary, weight)
    elif asked.weight is not None:
        if not canary:
            raise ModelopsError(f"--weight sets the canary's share, but {env} has no canary", field="--weight",
                                hint="add --canary VERSION")
        canary = (canary[0], asked.weight)
    version = asked.version or base.version
    notes: list[str] = []
    if canary and canary[0] == version and not asked.canary:  # (a canary asked to be the main one: refused)
        notes.append(f"the canary {version} now takes all of {env}'s traffic")
        canary = None
    shadow = base.shadow if asked.shadow is None else tuple(dict.fromkeys(asked.shadow))
    if version in shadow:
        notes.append(f"{version} is no longer a shadow of {env}: it answers")
        shadow = tuple(v for v in shadow if v != version)
    return replace(base, version=version, canary=canary, shadow=shadow), tuple(notes)
