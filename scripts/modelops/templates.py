"""The Jinja environment over the repository's `templates/` folder (StrictUndefined: a missing value is an error)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2


def environment(root: Path, *extra_dirs: Path) -> jinja2.Environment:
    """Templates from `extra_dirs` first (per-model overrides), then `<root>/templates`."""
    loader = jinja2.FileSystemLoader([str(d) for d in extra_dirs] + [str(root / "templates")])
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env
