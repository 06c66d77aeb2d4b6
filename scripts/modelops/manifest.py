"""The manifest (`models/<name>/model.yaml`) as a typed model; its JSON Schema is `modelops schema`."""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from modelops import quantity, yamlsafe
from modelops.errors import ModelopsError, Problem

MANIFEST = "model.yaml"
NAME_HINT = "use 2-63 lowercase letters, digits and dashes, starting with a letter and ending with a letter or digit"
NAME_RE = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"  # a DNS label and an image name: no dash at the end
ENV_RE = r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$"
SEMVER_RE = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$"
SCHEMES = ("file", "http", "https", "s3", "gs", "models", "runs", "mlflow-artifacts")
COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
FLAVORS = ("sklearn", "pyfunc")

Name = Annotated[str, StringConstraints(pattern=NAME_RE)]
SemVer = Annotated[str, StringConstraints(pattern=SEMVER_RE)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_RE)]
RelFile = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Owner = Annotated[str, StringConstraints(
    pattern=r"^(@[A-Za-z0-9][A-Za-z0-9-]{0,38}(/[A-Za-z0-9._-]{1,100})?|[^@\s]+@[^@\s]+\.[a-z]{2,})$")]
MAX_TEXT = 2000  # characters of a description
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Column(_Strict):
    """One input or output column, typed as MLflow's column specs are."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
    type: Literal[COLUMN_TYPES]  # type: ignore[valid-type]
    required: bool = True


class Signature(_Strict):
    """The input/output contract: what the runner validates and what /docs shows."""

    inputs: Annotated[list[Column], Field(min_length=1, max_length=4096)]
    outputs: Annotated[list[Column], Field(min_length=1, max_length=4096)]


class Artifact(_Strict):
    """Where a version's artifact lives and the sha256 it must have (see `modelops digest`)."""

    uri: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\s\x00-\x1f]+$")]
    sha256: Sha256


class Version(_Strict):
    """One immutable version of the model."""

    version: SemVer
    artifact: Artifact
    description: Text = ""


class Canary(_Strict):
    """A second version taking `weight` percent of the traffic, sticky per request key."""

    version: SemVer
    weight: Annotated[int, Field(ge=1, le=99)]


class Amounts(_Strict):
    """CPU and memory, as Kubernetes quantities."""

    cpu: quantity.Cpu
    memory: quantity.Memory


class Resources(_Strict):
    """What each replica asks for (requests) and may never exceed (limits)."""

    requests: Amounts = Amounts(cpu="250m", memory="512Mi")
    limits: Amounts = Amounts(cpu="1", memory="1Gi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for kind in ("cpu", "memory"):
            asked, most = getattr(self.requests, kind), getattr(self.limits, kind)
            if quantity.value(asked) > quantity.value(most):
                hint = f"raise limits.{kind} or lower requests.{kind}"
                raise PydanticCustomError("quantity", f"requests.{kind} {asked} is more than limits.{kind} "
                                          f"{most}", {"hint": hint})
        return self


class Autoscaling(_Strict):
    """Replicas follow CPU use, between min_replicas and max_replicas."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 5
    target_cpu_percent: Annotated[int, Field(ge=10, le=100)] = 70

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise PydanticCustomError("replicas", f"min_replicas {self.min_replicas} is more than "
                                      f"max_replicas {self.max_replicas}",
                                      {"hint": "make max_replicas at least min_replicas"})
        return self


class Scale(_Strict):
    """How an environment runs on a cluster: autoscaling (or a fixed `replicas`), resources per replica."""

    replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    resources: Resources = Resources()
    autoscaling: Autoscaling | None = Autoscaling()

    @model_validator(mode="before")
    @classmethod
    def _one_owner(cls, data: object) -> object:
        """A fixed `replicas` alone turns autoscaling off; both at once is a contradiction."""
        if isinstance(data, dict) and "replicas" in data:
            if data.get("autoscaling") is not None:
                raise PydanticCustomError("replicas", "replicas and autoscaling both set the replica count", {
                    "hint": "keep replicas for a fixed count, or autoscaling.min_replicas/max_replicas"})
            return {**data, "autoscaling": None}
        return data


class Deployment(_Strict):
    """What one environment serves."""

    version: SemVer
    canary: Canary | None = None
    shadow: Annotated[list[SemVer], Field(max_length=8)] = []
    scale: Scale = Scale()


class Manifest(_Strict):
    """`models/<name>/model.yaml`."""

    name: Name
    description: Text
    owners: Annotated[list[Owner], Field(min_length=1, max_length=50)]
    flavor: Literal[FLAVORS]  # type: ignore[valid-type]
    signature: Signature
    example: RelFile | None = None
    requirements: RelFile = "requirements.txt"
    versions: Annotated[list[Version], Field(min_length=1)]
    deployments: dict[EnvName, Deployment] = {}

    def version(self, number: str) -> Version:
        """The manifest entry for `number` (which must exist)."""
        return next(v for v in self.versions if v.version == number)


def json_schema() -> dict:
    """The manifest's JSON Schema, for editors and `modelops schema`."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelops model manifest (models/<name>/model.yaml)"
    return schema


class LoadedManifest(BaseModel):
    """A parsed manifest with where it came from, for error locations."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    manifest: Manifest
    folder: Path
    display: str
    lines: dict[tuple, int]

    def line(self, *path: str | int) -> int | None:
        """The line of the closest known ancestor of `path`."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def problem(self, path: tuple, message: str, hint: str = "", file: str = "") -> Problem:
        return Problem(file=file or self.display, line=self.line(*path) if not file else None,
                       field=yamlsafe.dotted(path), message=message, hint=hint)

    def read(self, field: Literal["requirements", "example"]) -> str:
        """The text of the file the manifest names in `field` (see `read_named`)."""
        return read_named(self.folder, getattr(self.manifest, field), field, self.display, self.line(field))


MAX_NAMED_BYTES = 1 << 20
_NAMED_HINTS = {"requirements": "list the model's runtime packages, one `name==version` per line",
                "example": 'write {"inputs": [{column: value, ...}]} in it, or remove the field'}


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
    display = _display(path, display_root)
    data, lines = yamlsafe.load(path, display)
    if not isinstance(data, dict):
        raise ModelopsError(f"the document is a {type(data).__name__}, not a mapping", file=display, line=1,
                            hint="a manifest is a mapping with name, description, owners, flavor, ...")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, display, lines) for err in exc.errors()]
        raise ModelopsError(problems[0].message, file=display, problems=problems) from None
    return LoadedManifest(manifest=manifest, folder=folder, display=display, lines=lines)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


_HINTS = {
    "extra_forbidden": "remove it, or fix its spelling; allowed keys are listed by `modelops schema`",
    "missing": "add it (see `modelops schema` or the README's manifest reference)",
}
_PATTERN_HINTS = {
    NAME_RE: NAME_HINT,
    ENV_RE: "use 1-31 lowercase letters, digits and dashes, starting with a letter and ending with a letter or digit",
    SEMVER_RE: "use a semantic version such as 1.2.0, quoted if YAML would read it as a number",
}


def _problem(err: dict, display: str, lines: dict[tuple, int]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function"))))
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
    return Problem(file=display, line=line, field=yamlsafe.dotted(loc), message=message, hint=hint)


def _did_you_mean(word: str) -> str:
    matches = difflib.get_close_matches(word, _KNOWN_FIELDS, n=1, cutoff=0.75)
    return matches[0] if matches else ""


_KNOWN_FIELDS = sorted({f for cls in (Manifest, Version, Artifact, Signature, Column, Deployment, Canary,
                                       Scale, Resources, Amounts, Autoscaling) for f in cls.model_fields})


def semver_key(version: str) -> tuple:
    """Sort key for a semantic version: a pre-release sorts before its release."""
    match = re.match(SEMVER_RE, version)
    if not match:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")
