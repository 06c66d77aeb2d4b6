"""Values of a column from text (CSV cells): the runner's text/csv bodies and batch scoring read them alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelops.signature.types import ColumnSpec

_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


_PARSERS: dict[str, Callable[[str], Any]] = {"float": float, "double": float, "integer": int, "long": int,
                                             "boolean": _boolean}


def parser(column: ColumnSpec) -> Callable[[str], Any]:
    """The function that reads one cell of `column`: "" is null, numbers and booleans are parsed (ValueError
    when the text is not one), other types stay text; the signature then checks the value."""
    parse = _PARSERS.get(column.type)
    if parse is None:
        return lambda text: text if text else None
    return lambda text: parse(text) if text else None


def problem(column: ColumnSpec, text: str) -> str:
    """The message for a cell `parser(column)` refused."""
    return f"column {column.name!r}: {text!r} is not {column.type}"
