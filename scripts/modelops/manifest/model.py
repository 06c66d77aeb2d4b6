"""The manifest (`models/<name>/model.yaml`) as a typed model; its JSON Schema is `modelops schema`."""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
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
METHODS = ("predict", "predict_proba")  # what the model answers: its predictions, or one probability per class


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


COLUMN_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
LABEL_MAX = 200  # characters of a class label


class Column(_Strict):
    """One input or output column, typed as MLflow's column specs are."""

    name: Annotated[str, StringConstraints(pattern=COLUMN_NAME_RE)]
    type: Literal[COLUMN_TYPES]  # type: ignore[valid-type]
    required: bool = True
    sensitive: bool = False  # left out of payload logs (`deployments.<env>.payloads`)


Label = Annotated[str, StringConstraints(min_length=1, max_length=LABEL_MAX)] | int


class OutputColumn(Column):
    """An output column; with `method: predict_proba`, the probability of the class `label`."""

    label: Label | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _string_or_integer(cls, value: object) -> object:
        """One problem, not one per member of the union."""
        if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        hint = "write the class as the model's classes_ hold it (quote a string that YAML would read as " \
               "something else, such as 'true')"
        raise PydanticCustomError("label", "a class label is a string or an integer", {"hint": hint})


class Signature(_Strict):
    """The input/output contract: what the runner validates and what /docs shows."""

    inputs: Annotated[list[Column], Field(min_length=1, max_length=4096)]
    outputs: Annotated[list[OutputColumn], Field(min_length=1, max_length=4096)]


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


PAYLOAD_FILE_RE = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}){0,3}\.jsonl$"
PAYLOAD_URL_RE = r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?$"
PAYLOAD_SINK_HINT = ("use stdout, a .jsonl file relative to the runner's payload folder (MODELOPS_PAYLOAD_DIR), "
                     "such as payloads.jsonl, or an http(s)://host[:port]/path URL without credentials")


class Payloads(_Strict):
    """A sampled record of what an environment scored (inputs, outputs, version, latency), off the request
    path; sensitive columns are left out. See docs/runner.md."""

    sink: Annotated[str, StringConstraints(max_length=1024)]
    sample_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    queue: Annotated[int, Field(ge=1, le=100_000)] = 1000

    @field_validator("sink")
    @classmethod
    def _known_sink(cls, sink: str) -> str:
        """stdout, a relative .jsonl path (no `..`, nothing absolute) or an http(s) URL (no user:password@)."""
        if sink == "stdout" or re.fullmatch(PAYLOAD_FILE_RE, sink) or re.fullmatch(PAYLOAD_URL_RE, sink):
            return sink
        raise PydanticCustomError("payload_sink", "not a payload sink", {"hint": PAYLOAD_SINK_HINT})

    @property
    def to_file(self) -> bool:
        """Whether the sink is a file (in the runner's payload folder, MODELOPS_PAYLOAD_DIR)."""
        return bool(re.fullmatch(PAYLOAD_FILE_RE, self.sink))


DURATION_RE = r"^[1-9][0-9]{0,5}(s|m|h)$"  # a Prometheus range: 30s, 10m, 1h
DURATION_HINT = "write a whole number of seconds, minutes or hours, such as 30s, 10m or 1h"
_UNIT = {"s": 1, "m": 60, "h": 3600}
Duration = Annotated[str, StringConstraints(pattern=DURATION_RE)]
Ratio = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, BeforeValidator(_number), Field(ge=0, le=1, allow_inf_nan=False)]


def seconds(duration: str) -> int:
    """The seconds of a Duration (`10m` -> 600)."""
    return int(duration[:-1]) * _UNIT[duration[-1]]


class Rollout(_Strict):
    """A metric-gated canary (`modelops canary`, and Argo Rollouts on a cluster): the canary's weight goes
    through `steps` while its errors, latency and shadow agreement stay within the bounds; 100 promotes."""

    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, max_length=10)]
    window: Duration = "10m"  # each verdict reads this much of the latest traffic
    min_requests: Annotated[int, Field(ge=1, le=10_000_000)] = 100  # answers of the candidate in the window
    max_error_rate: Share | None = None  # share of the canary's answers that are 5xx
    max_error_rate_ratio: Ratio | None = None  # the canary's 5xx share over the primary's
    max_p99_ratio: Ratio | None = None  # the canary's 99th percentile latency over the primary's
    min_shadow_agreement: Share | None = None  # a shadow becomes the canary once it agrees this often
    auto_rollback: bool = False  # a rollback's pull request may be merged without a review

    @field_validator("steps")
    @classmethod
    def _increasing_to_100(cls, steps: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(steps)) or steps[-1] != 100:
            hint = "list canary weights in increasing order, ending with 100 (the promotion), such as [10, 30, 100]"
            raise PydanticCustomError("steps", f"steps {steps} do not rise to 100", {"hint": hint})
        if len(steps) < 2:  # the canary is judged at a weight below 100 (Argo Rollouts: its steps before the last)
            raise PydanticCustomError("steps", "steps [100] promote without a step to judge the canary at", {
                "hint": "list at least one canary weight below 100 before it, such as [10, 100]"})
        return steps

    @model_validator(mode="after")
    def _bounded(self) -> Rollout:
        if (self.max_error_rate, self.max_error_rate_ratio, self.max_p99_ratio) == (None, None, None):
            raise PydanticCustomError("rollout", "the policy bounds nothing", {
                "hint": "set max_error_rate, max_error_rate_ratio or max_p99_ratio (or several)"})
        return self


# Batch scoring on a schedule (deployments.<env>.batch): a cron line and the URIs a CronJob reads and writes.
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of the month", 1, 31), ("month", 1, 12),
                ("day of the week", 0, 7))
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_PART = re.compile(r"(\*|(?P<low>[0-9]{1,2})(-(?P<high>[0-9]{1,2}))?)(/(?P<step>[0-9]{1,2}))?")
CRON_HINT = ('five fields: minute hour day-of-month month day-of-week, each *, a number, a range a-b, a list a,b '
             'or a step */n (such as "0 2 * * *": 02:00 UTC every day), or one of ' + ", ".join(_CRON_MACROS))
_BATCH_PATH = r"(/[A-Za-z0-9._~=+%-]+)*/[A-Za-z0-9._~=+%-]+\.(csv|jsonl|ndjson|parquet|pq)"
_BUCKET = r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]"
_STORE = (rf"(s3|gs)://{_BUCKET}|(wasbs|abfss)://[a-z0-9][a-z0-9-]{{1,61}}[a-z0-9]@[a-z0-9]{{3,24}}"
          r"\.(blob|dfs)\.core\.windows\.net")
_WEB = r"https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(:[0-9]{1,5})?"
BATCH_OUTPUT_RE = rf"^({_STORE}){_BATCH_PATH}$"
BATCH_INPUT_RE = rf"^({_STORE}|{_WEB}){_BATCH_PATH}$"
BATCH_URI_HINT = ("use s3://bucket/path/file.csv, gs://..., wasbs://container@account.blob.core.windows.net/..., "
                  "abfss://container@account.dfs.core.windows.net/... (inputs also https://host/path), "
                  "naming a .csv, .jsonl or .parquet file, without spaces, quotes or credentials")


def _cron_problem(schedule: str) -> str:
    """What is wrong with a cron line ("" when nothing)."""
    if re.search(r"[^\x20-\x7e\t]", schedule):  # a newline would end the crontab line: nothing but text
        return "a control character (such as a newline) in the line"
    if schedule in _CRON_MACROS:
        return ""
    fields = schedule.split()  # cron separates fields by any run of spaces or tabs
    if len(fields) != 5:
        return f"{len(fields)} field(s) where a cron line has 5"
    for text, (what, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            match = _CRON_PART.fullmatch(part)
            if not match:
                return f"the {what} field {text!r} is not cron syntax"
            numbers = [int(n) for n in (match["low"], match["high"]) if n is not None]
            if any(not low <= n <= high for n in numbers):
                return f"the {what} field {text!r} is outside {low}-{high}"
            if len(numbers) == 2 and numbers[0] > numbers[1]:
                return f"the {what} field {text!r} is a range from high to low"
            if match["step"] is not None and not 1 <= int(match["step"]) <= high:
                return f"the {what} field {text!r} has a step outside 1-{high}"
    return ""


class Batch(_Strict):
    """Score a file on a schedule with the environment's version: a Kubernetes CronJob running
    `python -m modelops score` in the environment's image (docs/batch.md)."""

    schedule: Annotated[str, StringConstraints(max_length=100)]
    input: Annotated[str, StringConstraints(max_length=1024, pattern=BATCH_INPUT_RE)]
    output: Annotated[str, StringConstraints(max_length=1024, pattern=BATCH_OUTPUT_RE)]
    rejects: Annotated[str, StringConstraints(max_length=1024, pattern=BATCH_OUTPUT_RE)] | None = None
    keep: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]],
                    Field(max_length=16)] = []

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        problem = _cron_problem(schedule)
        if problem:
            raise PydanticCustomError("cron", "not a cron schedule: {problem}", {"hint": CRON_HINT,
                                                                                "problem": problem})
        return schedule

    @field_validator("input", "output", "rejects")
    @classmethod
    def _no_dot_segments(cls, uri: str | None) -> str | None:
        if uri is not None and any(part in (".", "..") for part in uri.split("://", 1)[1].split("/")):
            raise PydanticCustomError("batch_uri", "a . or .. path segment", {"hint": BATCH_URI_HINT})
        return uri

    @field_validator("rejects")
    @classmethod
    def _json_lines(cls, uri: str | None) -> str | None:
        if uri is not None and not uri.endswith((".jsonl", ".ndjson")):
            raise PydanticCustomError("batch_rejects", "the rejects file is JSON Lines: its name ends in .jsonl",
                                      {"hint": "name it .jsonl (or .ndjson)"})
        return uri

    @model_validator(mode="after")
    def _three_files(self) -> Batch:
        """The input, the output and the rejects are three files: `score` never writes over its input. (The
        URIs' patterns admit one spelling per file: a lowercase scheme and bucket, no empty, . or .. segment.)"""
        named = {"input": self.input, "output": self.output, "rejects": self.rejects}
        for first, second in (("input", "output"), ("input", "rejects"), ("output", "rejects")):
            if named[second] is not None and named[first] == named[second]:
                raise _located("batch_files", (second,), f"{second} is the same file as {first}, {named[first]}",
                               f"give {second} a file of its own")
        return self



class Deployment(_Strict):
    """What one environment serves."""

    version: SemVer
    canary: Canary | None = None
    shadow: Annotated[list[SemVer], Field(max_length=8)] = []
    scale: Scale = Scale()
    payloads: Payloads | None = None
    rollout: Rollout | None = None
    batch: Batch | None = None  # scored on a schedule (a CronJob), by `version`


class Manifest(_Strict):
    """`models/<name>/model.yaml`."""

    name: Name
    description: Text
    owners: Annotated[list[Owner], Field(min_length=1, max_length=50)]
    flavor: Literal[tuple(FLAVORS)]  # type: ignore[valid-type]
    method: Literal[METHODS] = "predict"  # type: ignore[valid-type]
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

    model_config = ConfigDict(json_schema_extra={"allOf": [{  # what _method_fits_outputs checks, for editors
        "if": {"properties": {"method": {"const": "predict_proba"}}, "required": ["method"]},
        "then": {"properties": {"signature": {"properties": {"outputs": {"items": {
            "properties": {"type": {"const": "double"}}, "required": ["label"]}}}}}},
        "else": {"properties": {"signature": {"properties": {"outputs": {"items": {"not": {"required": ["label"]}}}}}}},
    }]})

    @model_validator(mode="after")
    def _method_fits_outputs(self) -> Manifest:
        """predict_proba: one double column per class, each naming its class label, once; predict: no labels."""
        seen: dict = {}
        for j, column in enumerate(self.signature.outputs):
            where = ("signature", "outputs", j)
            if self.method == "predict":
                if column.label is not None:
                    raise _method_error((*where, "label"), "a label names the class of a probability column",
                                        "remove it, or set method: predict_proba")
                continue
            if column.type != "double":
                raise _method_error((*where, "type"), f"{column.type} with method: predict_proba",
                                    "a probability column is a double")
            if column.label is None:
                raise _method_error(where, f"output {column.name!r} names no class label",
                                    "add label: <the class>, in the model's class order (classes_)")
            key = (type(column.label), column.label)
            if key in seen:
                raise _method_error((*where, "label"), f"label {column.label!r} is also outputs[{seen[key]}]'s",
                                    "one column per class: give each its own label")
            seen[key] = j
        return self

    @model_validator(mode="after")
    def _batch_keeps_no_input(self) -> Manifest:
        """A batch's `keep` columns are carried along, unscored: a signature input is in the output already."""
        inputs = {c.name for c in self.signature.inputs}
        for env, deployment in self.deployments.items():
            for k, name in enumerate(deployment.batch.keep if deployment.batch else ()):
                if name in inputs:
                    raise _located("batch_keep", ("deployments", env, "batch", "keep", k),
                                   f"{name!r} is a signature input: the output has it already",
                                   "keep only columns the model does not score (an id to join on)")
        return self

    def version(self, number: str) -> Version:
        """The manifest entry for `number` (which must exist)."""
        return next(v for v in self.versions if v.version == number)


def _method_error(loc: tuple, message: str, hint: str) -> PydanticCustomError:
    """An error of `method` and the outputs, located at `loc`."""
    return _located("method", loc, message, hint)


def _located(kind: str, loc: tuple, message: str, hint: str) -> PydanticCustomError:
    """A model-wide check's error, located at `loc` below the model checked (manifest.loading reads ctx["loc"])."""
    # `message` last: the context fills the template in order, so braces in a label are never a placeholder
    return PydanticCustomError(kind, "{message}", {"hint": hint, "loc": loc, "message": message})


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
