"""The manifest (`models/<name>/model.yaml`) as a typed model; its JSON Schema is `modelops schema`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from modelops.flavors import FLAVORS
from modelops.manifest import quantity

MODELS_DIR = "models"  # the repository folder holding one folder per model
MANIFEST = "model.yaml"
NAME_HINT = "use 2-63 lowercase letters, digits and dashes, starting with a letter and ending with a letter or digit"
NAME_RE = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"  # a DNS label and an image name: no dash at the end
ENV_RE = r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$"
SEMVER_RE = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$"
COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")


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


def _number(value: object) -> object:
    """YAML reads `1e-5` (no dot) as a string: take it as the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Deviation = Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)]


class Tolerance(_Strict):
    """How far a compiled model's numbers may be from the original's: |compiled - original| <= absolute +
    relative * |original| (labels are always identical). The default is strict."""

    absolute: Deviation = 1e-12
    relative: Deviation = 1e-9


class Compile(_Strict):
    """Serve the model compiled to ONNX, run by ONNX Runtime; verified against the model before it ships."""

    to: Literal["onnx"]
    precision: Literal["double", "float"] = "double"  # the graph's input and arithmetic
    tolerance: Tolerance = Tolerance()
    reference: RelFile | None = None  # rows (CSV with a header, or JSON records) to check on, besides the example


class Version(_Strict):
    """One immutable version of the model."""

    version: SemVer
    artifact: Artifact
    description: Text = ""
    compile: Compile | Literal[False] | None = None  # overrides the manifest's compile (false: serve as it is)


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
    flavor: Literal[tuple(FLAVORS)]  # type: ignore[valid-type]
    signature: Signature
    example: RelFile | None = None
    requirements: RelFile = "requirements.txt"
    versions: Annotated[list[Version], Field(min_length=1)]
    deployments: dict[EnvName, Deployment] = {}
    compile: Compile | None = None  # every version served compiled, unless a version says otherwise

    def compiled(self, number: str) -> Compile | None:
        """How version `number` is compiled (None: served as it is)."""
        own = self.version(number).compile
        return None if own is False else own or self.compile

    def version(self, number: str) -> Version:
        """The manifest entry for `number` (which must exist)."""
        return next(v for v in self.versions if v.version == number)


def json_schema() -> dict:
    """The manifest's JSON Schema, for editors and `modelops schema`."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelops model manifest (models/<name>/model.yaml)"
    return schema


def semver_key(version: str) -> tuple:
    """Sort key for a semantic version: a pre-release sorts before its release."""
    match = re.match(SEMVER_RE, version)
    if not match:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")
