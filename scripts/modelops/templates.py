"""The Jinja environment over the repository's `templates/` folder (StrictUndefined: a missing value is an error).

Templates run sandboxed: a model folder may carry its own copy of a template (a per-model override),
and manifests and their folders are untrusted input. Filters: `quote` and `exec_form` for Dockerfiles,
`json`, and for YAML `q` (a scalar that cannot break out of its line) and `mapping`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modelops.errors import ModelopsError
from modelops.files import shown


def dockerfile_quote(value: object) -> str:
    """`value` as one double-quoted Dockerfile word: no newline, continuation or `$` expansion survives."""
    text = " ".join(str(value).split())  # newlines and every other whitespace run become one space
    text = "".join(ch for ch in text if ch.isprintable())
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{text}"'


def exec_form(words: list[str]) -> str:
    """A JSON array for an exec-form CMD, ENTRYPOINT or HEALTHCHECK."""
    return json.dumps([str(word) for word in words])


def yaml_scalar(value: object) -> str:
    """A YAML scalar (or flow sequence) that cannot break out of its line: JSON is valid YAML."""
    return json.dumps(value if isinstance(value, list | int) else str(value), ensure_ascii=True)


def yaml_mapping(items: dict[str, str], indent: int) -> str:
    """A block mapping of strings (labels, selectors), `indent` spaces in, without a final newline."""
    return "\n".join(f"{' ' * indent}{key}: {yaml_scalar(value)}" for key, value in items.items())


@functools.cache
def environment(root: Path, *extra_dirs: Path, blocks: bool = False) -> jinja2.Environment:
    """Templates from `extra_dirs` first (per-model overrides), then `<root>/templates`.

    `blocks` trims the newline after a block tag and the indentation before it (for YAML).
    """
    loader = jinja2.FileSystemLoader([str(d) for d in extra_dirs] + [str(root / "templates")])
    env = ImmutableSandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                        autoescape=False, trim_blocks=blocks, lstrip_blocks=blocks)
    env.filters.update({"json": lambda value: json.dumps(value, ensure_ascii=False), "quote": dockerfile_quote,
                        "exec_form": exec_form, "q": yaml_scalar, "mapping": yaml_mapping})
    return env


def render(name: str, values: dict, root: Path, *extra_dirs: Path, blocks: bool = False) -> str:
    """Render template `name` with `values`; a broken template is a ModelopsError naming file and line."""
    env = environment(root, *extra_dirs, blocks=blocks)
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateNotFound as exc:  # `name`, or a template it imports
        raise ModelopsError(f"template {exc.name} not found", file=f"templates/{exc.name}",
                            hint="restore it from the modelops repository") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ModelopsError(f"template syntax error: {exc.message}", file=shown(Path(exc.filename or name), root),
                            line=exc.lineno) from None
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as exc:
        raise ModelopsError(f"template error: {exc}", file=shown(Path(env.get_template(name).filename or name), root),
                            hint="templates may use only the documented variables "
                                 "(docs/images.md, docs/kubernetes.md)") from None
