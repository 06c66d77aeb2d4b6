"""Reading a manifest: `load` parses `model.yaml` safely and type-checks it, every problem located."""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from modelops.errors import ModelopsError, Problem, dotted
from modelops.files import shown
from modelops.manifest import safe_yaml
from modelops.manifest.model import (
    BATCH_INPUT_RE,
    BATCH_OUTPUT_RE,
    BATCH_URI_HINT,
    DURATION_HINT,
    DURATION_RE,
    ENV_RE,
    MANIFEST,
    NAME_HINT,
    NAME_RE,
    SEMVER_RE,
    Amounts,
    Artifact,
    Autoscaling,
    Canary,
    Column,
    Deployment,
    Manifest,
    OutputColumn,
    Payloads,
    Resources,
    Rollout,
    Scale,
    Signature,
    Version,
)


class LoadedManifest(BaseModel):
    """A parsed manifest with where it came from, for error locations."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    manifest: Manifest
    folder: Path
    display: str
    lines: dict[tuple, int]
    sha256: str  # of the manifest file's bytes

    def line(self, *path: str | int) -> int | None:
        """The line of the closest known ancestor of `path`."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def problem(self, path: tuple, message: str, hint: str = "", file: str = "") -> Problem:
        return Problem(file=file or self.display, line=self.line(*path) if not file else None,
                       field=dotted(path), message=message, hint=hint)

    def read(self, field: Literal["requirements", "example"]) -> str:
        """The text of the file the manifest names in `field` (see `read_named`)."""
        return read_named(self.folder, getattr(self.manifest, field), field, self.display, self.line(field))


MAX_NAMED_BYTES = 1 << 20
_NAMED_HINTS = {"requirements": "list the model's runtime packages, one `name==version` per line",
                "example": 'write {"inputs": [{column: value, ...}]} in it, or remove the field',
                "reference": "a CSV file (a header of the input columns) or JSON records, in the model folder"}


def read_named(folder: Path, name: str, field: str, display: str, line: int | None = None) -> str:
    """The UTF-8 text of `folder/name`, a file the manifest names in `field`: a regular file in the model
    folder, never a symbolic link (whose target is never opened), a FIFO or a device."""
    def refuse(message: str, hint: str) -> ModelopsError:
        return ModelopsError(f"{name} {message}", file=display, line=line, field=field, hint=hint)

    if "/" in name or name in (".", ".."):
        raise refuse("leaves the model folder", "name a file in the model folder")
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise refuse("does not exist", _NAMED_HINTS[field]) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse("is a symbolic link", "commit the file itself in the model folder") from None
        raise refuse(f"cannot be read: {exc.strerror}", "make it a readable regular file") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a folder with an OSError
        os.close(fd)
        raise refuse("is not a regular file", "commit a regular file in the model folder")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_NAMED_BYTES + 1)
    if len(data) > MAX_NAMED_BYTES:
        raise refuse(f"is more than {MAX_NAMED_BYTES} bytes", "it holds a few lines, not data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"is not UTF-8 (byte {exc.start})", "save it as UTF-8") from None


def load(folder: Path, display_root: Path) -> LoadedManifest:
    """Read and type-check `folder/model.yaml`; raises ModelopsError listing every schema problem."""
    path = folder / MANIFEST
    display = shown(path, display_root)
    return from_bytes(safe_yaml.read(path, display), folder, display)


def from_bytes(raw: bytes, folder: Path, display: str) -> LoadedManifest:
    """Parse and type-check the bytes of a manifest of `folder` (read from, or to be written to, `display`)."""
    data, lines = safe_yaml.parse(raw, display)
    if not isinstance(data, dict):
        raise ModelopsError(f"the document is a {type(data).__name__}, not a mapping", file=display, line=1,
                            hint="a manifest is a mapping with name, description, owners, flavor, ...")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, display, lines) for err in exc.errors()]
        raise ModelopsError(problems[0].message, file=display, problems=problems) from None
    return LoadedManifest(manifest=manifest, folder=folder, display=display, lines=lines,
                          sha256=hashlib.sha256(raw).hexdigest())


_HINTS = {
    "extra_forbidden": "remove it, or fix its spelling; allowed keys are listed by `modelops schema`",
    "missing": "add it (see `modelops schema` or the README's manifest reference)",
}
_PATTERN_HINTS = {
    NAME_RE: NAME_HINT,
    ENV_RE: "use 1-31 lowercase letters, digits and dashes, starting with a letter and ending with a letter or digit",
    SEMVER_RE: "use a semantic version such as 1.2.0, quoted if YAML would read it as a number",
    DURATION_RE: DURATION_HINT,
    BATCH_INPUT_RE: BATCH_URI_HINT,
    BATCH_OUTPUT_RE: BATCH_URI_HINT + "; outputs go to a store (s3, gs, wasbs, abfss), not to https",
}


def _problem(err: dict, display: str, lines: dict[tuple, int]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
    loc += tuple(err.get("ctx", {}).get("loc", ()))  # a model-wide check names the field it refuses
    line = None
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            line = lines[loc[:end]]
            break
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        message = "unknown field"
        close = _did_you_mean(str(loc[-1]))
        hint = f"did you mean {close!r}?" if close else _HINTS[kind]
    elif kind == "literal_error":
        message = f"{value!r} is not allowed"
        hint = f"allowed values are: {err['ctx']['expected']}"
    elif kind == "string_pattern_mismatch":
        message = f"{value!r} is not valid"
        hint = _PATTERN_HINTS.get(err["ctx"]["pattern"], f"it must match {err['ctx']['pattern']}")
    else:
        message = err["msg"] + (f" (got {value!r})" if kind != "missing" and not isinstance(value, dict | list)
                                else "")
        hint = err.get("ctx", {}).get("hint") or _HINTS.get(kind, "")
        if kind == "string_type" and isinstance(value, int | float):
            hint = "quote it: YAML reads it as a number"
    return Problem(file=display, line=line, field=dotted(loc), message=message, hint=hint)


def _did_you_mean(word: str) -> str:
    matches = difflib.get_close_matches(word, _KNOWN_FIELDS, n=1, cutoff=0.75)
    return matches[0] if matches else ""


_KNOWN_FIELDS = sorted({f for cls in (Manifest, Version, Artifact, Signature, Column, OutputColumn, Deployment,
                                       Canary, Scale, Resources, Amounts, Autoscaling, Payloads, Rollout)
                         for f in cls.model_fields})


