"""Editing a manifest in place, as a person would: round-trip YAML (ruamel.yaml) keeps the comments, the
order of keys, the quoting and the indentation, so only the lines that change differ. The edited manifest is
checked as `validate` checks it before anything is written; it is written whole (a temporary file renamed
over it), and the change is shown as a unified diff.

    editor = ManifestEditor(folder, root)
    editor.serve("production", Serving("1.1.0"))
    editor.check(fetch, offline=True)      # raises, listing every problem: nothing written
    editor.write()                         # False when there was nothing to change
"""

from __future__ import annotations

import difflib
import io
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString
from ruamel.yaml.tokens import CommentToken

from modelops.errors import ModelopsError, Problem
from modelops.files import shown, write_text
from modelops.manifest import safe_yaml
from modelops.manifest.loading import LoadedManifest, from_bytes
from modelops.manifest.model import MANIFEST
from modelops.manifest.serving import Serving
from modelops.manifest.validate import Fetch, check
from modelops.reporter import Reporter

# (mapping, sequence, offset) indentations tried, the manifests' own first: the one that re-emits the
# manifest as it is wins, so that new lines are indented as the old ones.
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 3, 1), (3, 5, 3), (3, 3, 0))


@dataclass(frozen=True)
class EditResult:
    """What an edit did to one manifest: its unified diff ('' when nothing changed) and whether it was
    written (False: nothing to change, or a dry run)."""

    file: str
    diff: str
    written: bool
    notes: tuple[str, ...] = ()


class ManifestEditor:
    """One manifest opened for editing (it must load: a manifest with problems is fixed by hand first)."""

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder, self.path = folder, folder / MANIFEST
        self.display = shown(self.path, root)
        self._raw = safe_yaml.read(self.path, self.display)
        self.loaded: LoadedManifest = from_bytes(self._raw, folder, self.display)  # plain data, no tags or aliases
        self._mode = stat.S_IMODE(self.path.stat().st_mode)
        self.before = self._raw.decode("utf-8")
        self._crlf = "\r\n" in self.before
        self._yaml, self.data = _round_trip(self.before.replace("\r\n", "\n"))
        self._unchanged = _dump(self._yaml, self.data)

    # -- changes --------------------------------------------------------------------------------------
    def append_version(self, version: str, uri: str, sha256: str, description: str = "") -> None:
        """Add a version at the end of `versions`, in the style of the one before it."""
        versions = self.data["versions"]
        last = versions[-1] if versions and isinstance(versions[-1], CommentedMap) else CommentedMap()
        before = last.get("artifact") if isinstance(last.get("artifact"), CommentedMap) else CommentedMap()
        artifact = CommentedMap()
        artifact["uri"] = _like(before.get("uri"), uri)
        artifact["sha256"] = _like(before.get("sha256"), sha256)
        entry = CommentedMap()
        entry["version"] = _like(last.get("version"), version)
        if description:
            entry["description"] = _like(last.get("description"), description)
        entry["artifact"] = artifact
        for new, old in ((entry, last), (artifact, before)):
            if old.fa.flow_style():
                new.fa.set_flow_style()
        with _tail_kept(self.data, "versions"):
            versions.append(entry)

    def set_artifact(self, version: str, uri: str, sha256: str, description: str = "") -> None:
        """Point the listed `version` at another artifact (a scaffolded version whose artifact was not in)."""
        index = next(i for i, v in enumerate(self.loaded.manifest.versions) if v.version == version)
        entry = self.data["versions"][index]
        _set(entry["artifact"], "uri", uri)
        _set(entry["artifact"], "sha256", sha256)
        if description:
            _set(entry, "description", description, after="version")

    def serve(self, env: str, serving: Serving) -> None:
        """Make `env` serve `serving`, creating the environment (and `deployments`) when missing; its other
        keys (scale, payloads) and the style of what stays are kept."""
        if not isinstance(self.data.get("deployments"), CommentedMap):
            with _tail_kept(self.data, None):
                self.data["deployments"] = CommentedMap()
        deployments = self.data["deployments"]
        if deployments.fa.flow_style():
            deployments.fa.set_block_style()
        if env not in deployments:
            fresh = CommentedMap()
            fresh["version"] = _like(None, serving.version)
            siblings = [d for d in deployments.values() if isinstance(d, CommentedMap)]
            if siblings and siblings[-1].fa.flow_style():
                fresh.fa.set_flow_style()
            with _tail_kept(deployments, None):
                deployments[env] = fresh
        with _tail_kept(deployments, env):
            _apply(deployments[env], serving)

    # -- results --------------------------------------------------------------------------------------
    def text(self) -> str:
        """The manifest as it would be written: the original's own lines wherever nothing changed."""
        after = _merge(self.before.replace("\r\n", "\n"), self._unchanged, _dump(self._yaml, self.data))
        return after.replace("\n", "\r\n") if self._crlf else after

    def diff(self) -> str:
        """The change as a unified diff (`a/<file>`, `b/<file>`), '' when there is none."""
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.text().splitlines(True),
                                            f"a/{self.display}", f"b/{self.display}"))

    def check(self, fetch: Fetch, *, offline: bool, reporter: Reporter | None = None) -> LoadedManifest:
        """The edited manifest, checked as `validate` checks it (`offline`: without loading the versions);
        raises listing every problem, located in the manifest as it would be written."""
        try:
            candidate = from_bytes(self.text().encode("utf-8"), self.folder, self.display)
            problems = check(candidate, fetch, offline=offline, reporter=reporter)
        except ModelopsError as exc:
            problems = exc.problems
        if problems:
            raise ModelopsError.of([*problems, Problem(
                file=self.display, message="not written: the edit would make the manifest invalid (the lines "
                "above are those of the edited manifest)", hint="change the request; the manifest is as it was")])
        return candidate

    def write(self) -> bool:
        """Write the edited manifest whole, keeping its permissions; False when there is nothing to change.
        Refused when the file changed since it was read."""
        after = self.text()
        if after == self.before:
            return False
        if self.path.read_bytes() != self._raw:
            raise ModelopsError("changed on disk while it was being edited", file=self.display,
                                hint="run the command again")
        write_text(self.path, after, mode=self._mode)
        return True

    def result(self, written: bool, notes: tuple[str, ...] = ()) -> EditResult:
        return EditResult(self.display, self.diff(), written, notes)


def _round_trip(text: str) -> tuple[YAML, Any]:
    """The round-trip loader and the document, with the indentation that re-emits `text` best."""
    best: tuple[float, YAML, Any] | None = None
    for mapping, sequence, offset in _INDENTS:
        rt = YAML()  # round-trip: comments, order, flow or block style
        rt.preserve_quotes = True
        rt.width = 4096  # never fold a long line
        rt.indent(mapping=mapping, sequence=sequence, offset=offset)
        data = rt.load(text)
        emitted = _dump(rt, data)
        if emitted == text:
            return rt, data
        score = difflib.SequenceMatcher(None, text.splitlines(), emitted.splitlines()).ratio()
        if best is None or score > best[0]:
            best = (score, rt, data)
    assert best is not None
    return best[1], best[2]


def _dump(rt: YAML, data: Any) -> str:
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _merge(original: str, unchanged: str, changed: str) -> str:
    """`changed` with the original's own lines wherever the edit left them: the edit is the difference
    between `unchanged` (how the original re-emits) and `changed`, applied to the original. When that
    cannot be told line by line, `changed` whole."""
    if original == unchanged:
        return changed
    source, emitted, wanted = (t.splitlines(True) for t in (original, unchanged, changed))
    where: dict[int, int] = {}  # line of `emitted` -> line of `source` it stands for
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, source, emitted, autojunk=False).get_opcodes():
        if tag == "equal":
            where.update({j1 + k: i1 + k for k in range(j2 - j1 + 1)})
        else:
            where.setdefault(j1, i1)
            where[j2] = i2
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, emitted, wanted, autojunk=False).get_opcodes():
        if i1 not in where or i2 not in where:
            return changed
        out += source[where[i1]:where[i2]] if tag == "equal" else wanted[j1:j2]
    merged = "".join(out)
    try:  # the same data, or the emitted text whole
        same = yaml.safe_load(merged) == yaml.safe_load(changed)
    except yaml.YAMLError:
        same = False
    return merged if same else changed


def _apply(deployment: CommentedMap, serving: Serving) -> None:
    """Set one deployment's version, canary and shadows, changing only what differs."""
    _set(deployment, "version", serving.version)
    if serving.canary:
        version, weight = serving.canary
        if isinstance(deployment.get("canary"), CommentedMap):
            _set(deployment["canary"], "version", version)
            _set(deployment["canary"], "weight", weight)
        else:
            canary = CommentedMap(version=_like(None, version), weight=weight)
            canary.fa.set_flow_style()
            deployment.insert(_position(deployment, "version"), "canary", canary)
    elif "canary" in deployment:
        del deployment["canary"]
    if list(serving.shadow) != list(deployment.get("shadow") or []):
        old = deployment.get("shadow")
        if serving.shadow:
            shadow = CommentedSeq(_like(old[0] if old else None, v) for v in serving.shadow)
            if not isinstance(old, CommentedSeq) or old.fa.flow_style():
                shadow.fa.set_flow_style()
            if "shadow" in deployment:
                deployment["shadow"] = shadow
            else:
                deployment.insert(_position(deployment, "canary", "version"), "shadow", shadow)
        else:
            del deployment["shadow"]
    if deployment.fa.flow_style() and ("canary" in deployment or "shadow" in deployment):
        deployment.fa.set_block_style()


def _position(mapping: CommentedMap, *after: str) -> int:
    """The position just after the first of `after` that `mapping` holds (0 if none)."""
    keys = list(mapping)
    return next((keys.index(key) + 1 for key in after if key in mapping), 0)


def _set(mapping: CommentedMap, key: str, value: str | int, after: str = "") -> None:
    """Set `key` unless it already holds `value`, keeping its quoting; a new key goes after `after`."""
    old = mapping.get(key)
    if old is not None and str(old) == str(value):
        return
    if key in mapping or not after:
        mapping[key] = _like(old, value)
    else:
        mapping.insert(_position(mapping, after), key, _like(None, value))


def _like(old: object, value: str | int) -> object:
    """`value`, quoted as `old` is; plain text double-quoted when YAML 1.1 (the manifests' loader) would
    read it as something else than that text."""
    if not isinstance(value, str):
        return value
    if isinstance(old, ScalarString) and type(old) is not ScalarString:
        return type(old)(value)
    try:
        plain = yaml.safe_load(value) == value
    except yaml.YAMLError:
        plain = False
    return value if plain and value.strip() == value else DoubleQuotedScalarString(value)


# -- comments after the last line of a node ---------------------------------------------------------------
# ruamel keeps the comment lines that follow a node on the last key (or item) before them, however deep.
# When that last key changes (a version appended, a canary removed), those lines must follow the new last
# one, or they would end up inside the node.

@contextmanager
def _tail_kept(parent: CommentedBase, key: object) -> Iterator[None]:
    """Keep the comment lines after `parent[key]` (after `parent` itself when `key` is None) after it,
    whatever the change made inside."""
    tail = _take_tail(parent, key)
    yield
    if tail:
        _put_tail(parent, key, tail)


def _last_path(parent: CommentedBase, key: object) -> list[tuple[CommentedBase, object]]:
    """(container, key) from `parent[key]` down its last keys or items, while they are block collections."""
    node: Any = parent
    path = []
    if key is not None:
        path.append((parent, key))
        node = parent[key]
    while isinstance(node, CommentedMap | CommentedSeq) and len(node) and not node.fa.flow_style():
        last = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        path.append((node, last))
        node = node[last]
    return path


def _slot(container: CommentedBase) -> int:
    return 2 if isinstance(container, CommentedMap) else 0  # where ruamel keeps a comment after a value


def _take_tail(parent: CommentedBase, key: object) -> str:
    for container, last in reversed(_last_path(parent, key)):
        entry = container.ca.items.get(last)
        token = entry[_slot(container)] if entry else None
        if isinstance(token, CommentToken):
            head, _, tail = token.value.partition("\n")
            if head:
                token.value = head + "\n"
            else:
                entry[_slot(container)] = None
            return tail
    return ""


def _put_tail(parent: CommentedBase, key: object, tail: str) -> None:
    path = _last_path(parent, key) if key is None or key in parent else _last_path(parent, None)
    if not path:
        return
    container, last = path[-1]
    entry = container.ca.items.setdefault(last, [None, None, None, None])
    slot = _slot(container)
    if isinstance(entry[slot], CommentToken):
        entry[slot].value = entry[slot].value.rstrip("\n") + "\n" + tail
    else:
        entry[slot] = CommentToken("\n" + tail, CommentMark(0), None)
