"""Safe YAML for untrusted manifests: plain data only, bounded size, no aliases, a line for every path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelops.errors import ModelopsError, dotted

MAX_BYTES = 256 * 1024
MAX_DEPTH = 64  # levels of nested mappings and sequences, in manifests as in examples
_PLAIN_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
Path_ = tuple[str | int, ...]


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that refuses anchors and aliases (no billion-laughs) and nesting deeper than MAX_DEPTH."""

    depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(None, None, "aliases (*name) are not allowed in manifests",
                                       event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(None, None, "anchors (&name) are not allowed in manifests",
                                       event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load(path: Path, display: str, empty_hint: str = "start from `modelops new NAME`") -> tuple[Any, dict[Path_, int]]:
    """Parse a YAML file into plain data and a map from each value's path to its 1-based line."""
    return parse(read(path, display), display, empty_hint)


def read(path: Path, display: str) -> bytes:
    """The bytes of a YAML file, refused past MAX_BYTES."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelopsError(f"cannot read: {exc.strerror}", file=display) from None
    if size > MAX_BYTES:
        raise ModelopsError(f"file is {size} bytes, more than the {MAX_BYTES} allowed", file=display,
                            hint="a manifest holds pointers to artifacts, not data")
    return path.read_bytes()


def parse(data: bytes, display: str, empty_hint: str = "start from `modelops new NAME`"
          ) -> tuple[Any, dict[Path_, int]]:
    """Plain data from YAML bytes read from `display`, and the line of each value's path."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelopsError(f"not UTF-8: invalid byte at offset {exc.start}", file=display,
                            line=data[:exc.start].count(b"\n") + 1, hint="save the file as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ModelopsError(f"invalid YAML: {exc.problem}", file=display,
                            line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ModelopsError(f"invalid YAML: {exc}", file=display) from None
    if node is None:
        raise ModelopsError("the file is empty", file=display, hint=empty_hint)
    lines: dict[Path_, int] = {}
    return _to_data(node, (), lines, display), lines


def _to_data(node: yaml.Node, path: Path_, lines: dict[Path_, int], display: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS and node.tag != _TIMESTAMP:
        raise ModelopsError(f"tag {node.tag!r} is not allowed: manifests hold plain data only",
                            file=display, line=node.start_mark.line + 1, field=dotted(path))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise ModelopsError("mapping keys must be plain strings", file=display,
                                    line=key_node.start_mark.line + 1, field=dotted(path))
            key = key_node.value
            if key in out:
                raise ModelopsError(f"duplicate key {key!r}", file=display,
                                    line=key_node.start_mark.line + 1, field=dotted((*path, key)))
            out[key] = _to_data(value_node, (*path, key), lines, display)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, i), lines, display) for i, item in enumerate(node.value)]
    if node.tag == _TIMESTAMP:
        return node.value  # dates stay text, as written
    return _CONSTRUCTOR.construct_object(node, deep=True)
