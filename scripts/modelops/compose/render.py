"""The tree of Compose files, one per environment, written so that rendering twice changes nothing.

Layout written under the output folder (by default `deploy-compose/`):
  <env>/compose.yaml    every model deploying to <env>, one service each, sorted by name
Each file starts with HEADER, and only such files are replaced or removed: the operator's own files beside
them (`.env`, `api-keys`, a `compose.override.yaml`) stay. Each service is one block behind a comment
naming its model (and ending with the digest of the block's text), so rendering some models (PATHS)
replaces their services and keeps the others as they are, unless one was changed by hand; rendering every
model (no PATHS) also drops the services of models that are gone.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from modelops import templates
from modelops.compose import services
from modelops.errors import ModelopsError
from modelops.files import check_file, owned, replace_owned, shown
from modelops.images.context import UID
from modelops.manifest.loading import LoadedManifest
from modelops.settings import Settings

HEADER = "# Rendered by `modelops render --target compose`"
FILE = "compose.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BLOCK = re.compile(r"^  # ([a-z][a-z0-9-]*[a-z0-9]): ", re.MULTILINE)  # the first line of a service block


def render(root: Path, conf: Settings, manifests: list[LoadedManifest], out: Path, *, env: str | None = None,
           refs: dict[str, dict[str, str]] | None = None, prune: bool = False) -> tuple[list[Path], list[str]]:
    """Write the Compose file of each environment (or of `env`) under `out` with the services of `manifests`;
    with `prune` (every model), the services of models that are gone are removed too.

    `refs` ({model: {image key: reference by digest}}) pins images by digest; without it they go by tag
    (a note says so). Every file is rendered in memory and checked before the first write, and a file is
    written only when its text changes. Returns the files and the notes.
    """
    envs = sorted({e for m in manifests for e in m.manifest.deployments})
    if env and env not in envs:
        raise ModelopsError(f"no model deploys to {env!r}", hint=f"environments are: {', '.join(envs) or 'none'}")
    fresh: dict[str, dict[str, str]] = {}
    for m in manifests:
        for e in sorted(m.manifest.deployments):
            if env in (None, e):
                fresh.setdefault(e, {})[m.manifest.name] = services.service(m, e, refs, conf, root)
    selected = {m.manifest.name for m in manifests}
    on_disk = {p.parent.name: p for p in owned(out.glob(f"*/{FILE}"), HEADER)}
    texts: dict[str, str | None] = {}
    for e in sorted(set(on_disk) | set(fresh)):
        whole = prune and env in (None, e)  # every service of the file is rendered again: none is kept
        blocks = _blocks(on_disk[e]) if e in on_disk and not whole else {}
        blocks = {n: b for n, b in blocks.items()
                  if not (env in (None, e) and n in selected) and (n in selected or not prune)}
        if blocks:
            _check_kept(on_disk[e], blocks)
        blocks |= fresh.get(e, {})
        texts[e] = _file(root, e, blocks) if blocks else None
    for e, text in texts.items():
        if text is not None:
            check_file(out / e / FILE, HEADER)
    files = [path for e, text in texts.items()
             for path in replace_owned(out / e, {FILE: text} if text is not None else {}, HEADER)]
    notes = [n for m in manifests for e in sorted(m.manifest.deployments) if env in (None, e)
             for n in services.notes(m, e)]
    if refs is None and fresh:
        notes.append(f"images go by tag ({conf.image_registry}/<model>:<versions>), so a pushed tag can change under "
                     "them: pass --images (`modelops build --push --format json` output) to pin them by digest")
    return sorted(files), notes


def _file(root: Path, env: str, blocks: dict[str, str]) -> str:
    """The Compose file of one environment from its service blocks."""
    names = sorted(blocks)
    context = {"header": HEADER, "env": env, "services": [blocks[n] for n in names], "secret": services.SECRET,
               "secret_file": services.SECRET_FILE, "uid": UID,
               "port_variables": [services.port_variable(n) for n in names]}
    text = templates.render(f"compose/{FILE}.j2", context, root, blocks=True)
    parsed = services.parse(text, f"templates/compose/{FILE}.j2", "one Compose file")
    if not isinstance(parsed, dict) or sorted(parsed.get("services") or {}) != names:
        raise ModelopsError(f"templates/compose/{FILE}.j2 did not render one Compose file with the services "
                            f"{', '.join(names)}", hint="check the template")
    return text


def _blocks(path: Path) -> dict[str, str]:
    """The service blocks of a Compose file this module wrote: {model: text}."""
    text = path.read_text()
    start, end = text.find("\nservices:\n"), text.find("\nsecrets:\n")
    section = text[start + len("\nservices:\n"):end] if 0 <= start < end else ""
    marks = list(_BLOCK.finditer(section))
    blocks = {mark.group(1): section[mark.start():marks[i + 1].start() if i + 1 < len(marks) else None].rstrip("\n")
              for i, mark in enumerate(marks)}
    try:
        parsed = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        parsed = None
    if not marks or section[:marks[0].start()].strip() or not isinstance(parsed, dict) \
            or sorted(parsed.get("services") or {}) != sorted(blocks):
        raise ModelopsError("was changed by hand: its services cannot be kept", file=shown(path, Path.cwd()),
                            hint="render every model (no PATHS) to rewrite it, or remove it")
    return blocks


def _check_kept(path: Path, kept: dict[str, str]) -> None:
    """Raise unless every service block kept from `path` is as rendered (the digest on its first line)."""
    for name, block in sorted(kept.items()):
        if not services.unchanged(block):
            raise ModelopsError(f"was changed by hand: the service {name} is not as rendered (the digest at the end "
                                "of its first line is missing or does not match), so it cannot be kept",
                                file=shown(path, Path.cwd()),
                                hint="render its model too (or every model, no PATHS) to rewrite it, or undo the "
                                     "change")
