"""Editing one deployment of a manifest in place: comments, key order, quoting and indentation are kept, so
the change a command makes is the few lines a person would have changed.

    yaml, doc = edit.load(path)
    edit.set_deployment(doc, "production", {"canary": {"weight": 30}})
    diff = edit.write(path, yaml, doc, check=...)   # "" when nothing changed

or, for a manifest read with `manifest.loading`, all at once and validated before the write:

    diff = edit.update(loaded, {"production": {"version": "1.1.0", "canary": None}}, fetch)

Load only a manifest already read with `manifest.loading` (which refuses tags, anchors and oversized
files): this round-trip parser is for writing back, not for untrusted input.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import itertools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from modelops.errors import ModelopsError
from modelops.files import write_text
from modelops.manifest import loading, validate
from modelops.manifest.model import MANIFEST


def load(path: Path) -> tuple[YAML, CommentedMap]:
    """The round-trip parser set to the file's own indentation, and the document."""
    text = path.read_text(encoding="utf-8")
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line
    mapping, sequence, offset = indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml, yaml.load(text)


_OPENS = re.compile(r":\s*(#.*)?$")  # a line ending a key whose block follows


def indentation(text: str) -> tuple[int, int, int]:
    """How the file indents: a nested mapping's keys, a sequence item's content, and its dash (ruamel's
    mapping, sequence and offset), from the first block of each kind (2, 2, 0 when it has none)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    mapping = sequence = offset = None
    for above, line in itertools.pairwise(lines):
        if not _OPENS.search(above):
            continue
        depth = (len(line) - len(line.lstrip())) - (len(above) - len(above.lstrip()))
        body = line.lstrip()
        if body.startswith("- ") and offset is None:
            offset, sequence = depth, depth + len(body) - len(body[1:].lstrip())
        elif not body.startswith("- ") and not above.lstrip().startswith("- ") and mapping is None:
            mapping = depth
    return mapping or 2, sequence or 2, offset or 0


def set_deployment(doc: CommentedMap, env: str, changes: Mapping[str, Any]) -> None:
    """Apply `changes` to `deployments.<env>`: a mapping merges into the one there (so `{"canary": {"weight":
    30}}` changes one number and keeps the flow style), a list replaces the items of the one there, None
    removes the key, anything else replaces the value."""
    _merge(doc["deployments"][env], changes)


def _merge(node: CommentedMap, changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        current = node.get(key)
        if value is None:
            _remove(node, key)
        elif isinstance(value, Mapping) and isinstance(current, CommentedMap):
            _merge(current, value)
        elif isinstance(value, Mapping):
            new = CommentedMap(value)
            new.fa.set_flow_style()  # a new small mapping reads as the manifest's examples: {version: …, weight: …}
            node[key] = new
        elif isinstance(value, list) and isinstance(current, CommentedSeq):
            current[:] = value
        else:
            node[key] = value


def _remove(node: CommentedMap, key: str) -> None:
    """Remove `key`, keeping the comment lines below it (ruamel holds them with the key's own line comment)."""
    if key not in node:
        return
    keys = list(node)
    token = (node.ca.items.pop(key, None) or [None] * 3)[2]
    del node[key]
    below = token.value.partition("\n")[2] if token is not None else ""
    if not below.strip():
        return
    at = keys.index(key)
    if at == 0:  # nothing above to hold them: they go before the next key, if any
        if len(keys) > 1:
            node.yaml_set_comment_before_after_key(keys[1], before="\n".join(
                line.strip().removeprefix("#").strip() for line in below.splitlines()))
        return
    entry = node.ca.items.setdefault(keys[at - 1], [None, None, None, None])
    if entry[2] is None:
        entry[2] = CommentToken("\n" + below, CommentMark(0), None)
    else:
        entry[2].value = entry[2].value.rstrip("\n") + "\n" + below


def dumps(yaml: YAML, doc: CommentedMap) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def write(path: Path, yaml: YAML, doc: CommentedMap, check: Callable[[str], None] | None = None,
          display: str = "") -> str:
    """Write `doc` to `path` when it changed, after `check(new text)` (which raises to refuse it), through a
    temporary file: never half-written. Returns the unified diff ("" when nothing changed)."""
    before = path.read_text(encoding="utf-8")
    after = dumps(yaml, doc)
    if after == before:
        return ""
    if check is not None:
        check(after)
    mode = path.stat().st_mode & 0o7777
    write_text(path, after)
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise ModelopsError(f"cannot keep its permissions: {exc.strerror}", file=str(path)) from None
    name = display or path.name
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}"))


def update(loaded: loading.LoadedManifest, changes: Mapping[str, Mapping[str, Any]], fetch: validate.Fetch) -> str:
    """Apply {env: changes} (as `set_deployment`) to the manifest `loaded` was read from, and write it only
    when the result passes validate's offline checks (`fetch` verifies local artifacts); returns the diff.
    Refused when the file changed since it was read."""
    path = loaded.folder / MANIFEST
    if hashlib.sha256(path.read_bytes()).hexdigest() != loaded.sha256:
        raise ModelopsError("changed while modelops read it: nothing written", file=loaded.display,
                            hint="run the command again")
    yaml, doc = load(path)
    for env, change in changes.items():
        set_deployment(doc, env, change)

    def check(text: str) -> None:
        problems = validate.check(loading.parse(text.encode("utf-8"), loaded.folder, loaded.display), fetch,
                                  offline=True)
        if problems:
            raise ModelopsError.of([replace(p, message=f"{p.message} (in the rewritten manifest: nothing "
                                                       "written)") for p in problems])

    return write(path, yaml, doc, check, loaded.display)
