"""Kubernetes resource quantities (`500m`, `2`, `512Mi`): checked as the API server parses them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

# resource.Quantity's grammar, as in the OpenAPI schema of every Kubernetes object.
PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
           r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_SPLIT = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
# 512mb, 2 GB, 1gib, 300k...: a unit written as people write it, and the one Kubernetes means.
_LOOSE_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtpe])(?:i?b)?\s*$", re.IGNORECASE)
_MEMORY_UNITS = "Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000)"


def value(text: str) -> Decimal:
    """The number a valid quantity stands for (`500m` -> 0.5, `1Ki` -> 1024)."""
    number, suffix = _SPLIT.match(text).groups()  # type: ignore[union-attr]
    if suffix in _BINARY:
        return Decimal(number) * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** Decimal(suffix[1:])
    return Decimal(number) * _DECIMAL[suffix]


def _text(raw: object, kind: str, hint: str, minimum: Decimal) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise PydanticCustomError("quantity", f"not a Kubernetes {kind} quantity", {"hint": hint})
    text = raw if isinstance(raw, str) else repr(raw)
    if not re.match(PATTERN, text):
        raise PydanticCustomError("quantity", f"not a Kubernetes {kind} quantity", {"hint": hint})
    if value(text) < minimum:
        raise PydanticCustomError("quantity", f"too little {kind}", {"hint": hint})
    return text


def _cpu(raw: object) -> str:
    return _text(raw, "CPU", "write cores (1, 0.5) or millicores (500m), at least 1m", Decimal("0.001"))


def _memory(raw: object) -> str:
    loose = _LOOSE_MEMORY.match(raw) if isinstance(raw, str) else None
    if loose and (raw.endswith("m") or not re.match(PATTERN, raw)):  # type: ignore[union-attr]
        number, unit = loose.groups()
        suggestion = number + ("Ki" if unit.lower() == "k" else f"{unit.upper()}i")
        raise PydanticCustomError("quantity", "not a Kubernetes memory quantity", {
            "hint": f"did you mean {suggestion}? Memory takes {_MEMORY_UNITS}; a lone m means 1/1000 byte"})
    number = str(raw) if re.fullmatch(r"[0-9]+(\.[0-9]+)?", str(raw)) else ""
    hint = f"did you mean {number}Mi? A number alone counts bytes" if number else \
        f"write bytes with a unit, at least 1Mi: 512Mi, 2Gi; units are {_MEMORY_UNITS}"
    return _text(raw, "memory", hint, Decimal(2**20))


_SCHEMA = {"anyOf": [{"type": "string", "pattern": PATTERN}, {"type": "number", "exclusiveMinimum": 0}]}
Cpu = Annotated[str, BeforeValidator(_cpu), WithJsonSchema(_SCHEMA)]
Memory = Annotated[str, BeforeValidator(_memory), WithJsonSchema(_SCHEMA)]
