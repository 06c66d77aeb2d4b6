"""The Jinja environment over the repository's `templates/` folder (StrictUndefined: a missing value is an error).

Templates run sandboxed: a model folder may carry its own copy of a template (a per-model override),
and manifests and their folders are untrusted input.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modelops.errors import ModelopsError


def dockerfile_quote(value: object) -> str:
    """`value` as one double-quoted Dockerfile word: no newline, continuation or `$` expansion survives."""
    text = " ".join(str(value).split())  # newlines and every other whitespace run become one space
    text = "".join(ch for ch in text if ch.isprintable())
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{text}"'


def exec_form(words: list[str]) -> str:
    """A JSON array for an exec-form CMD, ENTRYPOINT or HEALTHCHECK."""
    return json.dumps([str(word) for word in words])


def environment(root: Path, *extra_dirs: Path) -> jinja2.Environment:
    """Templates from `extra_dirs` first (per-model overrides), then `<root>/templates`."""
    loader = jinja2.FileSystemLoader([str(d) for d in extra_dirs] + [str(root / "templates")])
    env = ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined,
                                        keep_trailing_newline=True, autoescape=False)
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["quote"] = dockerfile_quote
    env.filters["exec_form"] = exec_form
    return env


def render(name: str, values: dict, root: Path, *extra_dirs: Path) -> str:
    """Render template `name` with `values`; a broken template is a ModelopsError naming file and line."""
    env = environment(root, *extra_dirs)
    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound:
        raise ModelopsError(f"template {name} not found", file=f"templates/{name}",
                            hint="restore it from the modelops repository") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ModelopsError(f"template syntax error: {exc.message}", file=exc.filename or name,
                            line=exc.lineno) from None
    try:
        return template.render(**values)
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as exc:
        raise ModelopsError(f"template error: {exc}", file=template.filename or name,
                            hint="templates may use only the documented variables (docs/images.md)") from None
