"""Platform settings: `[tool.modelops]` in the repository's pyproject.toml, overridden by `MODELOPS_<KEY>`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from modelops.errors import ModelopsError

DEFAULTS: dict[str, str] = {
    "tracking_uri": "",
    "image_registry": "127.0.0.1:5000/models",
    "base_image": "python:3.11-slim",
}


def get(key: str, root: Path) -> str:
    """The setting `key`: the environment variable `MODELOPS_<KEY>`, else pyproject.toml, else the default."""
    if (env := os.environ.get(f"MODELOPS_{key.upper()}")) is not None:
        return env
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("modelops", {})
        except tomllib.TOMLDecodeError as exc:
            raise ModelopsError(f"invalid TOML: {exc}", file="pyproject.toml") from None
        if key in table:
            return str(table[key])
    return DEFAULTS[key]
