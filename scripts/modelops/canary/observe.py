"""What the runners of one deployment did, per version: from Prometheus (its HTTP API, over a window) or
straight from the runners' /metrics (parsed with prometheus_client's parser, since they started)."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from modelops.canary import queries
from modelops.errors import ModelopsError

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Traffic:
    """One version's scoring answers: how many, how many were 5xx, and their 99th percentile latency."""

    requests: float = 0.0
    errors: float = 0.0
    p99_s: float | None = None  # None: no answer to measure


@dataclass(frozen=True)
class Shadowing:
    """One shadow version: the rows it scored, those agreeing with the version that answered, and the
    mirrored requests it scored or failed on."""

    rows: float = 0.0
    agreeing: float = 0.0
    scored: float = 0.0
    errors: float = 0.0


@dataclass(frozen=True)
class Observations:
    source: str  # where they were read, for people
    window: str | None  # the range they cover (None: since the runners started)
    versions: dict[str, Traffic] = field(default_factory=dict)
    shadows: dict[str, Shadowing] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def span(self) -> str:
        """The window as a sentence ends: 'in the last 10m', 'since the runners started'."""
        return f"in the last {self.window}" if self.window else "since the runners started"


# -- Prometheus -----------------------------------------------------------------------------------------
def from_prometheus(url: str, selector: str, window: str, *, file: str = "", field: str = "") -> Observations:
    """The deployment's versions over the last `window`, from Prometheus at `url` (`file` and `field` name
    where the URL was set, for errors)."""
    at = f"{time.time():.3f}"  # every query at the same instant, over the same window

    def ask(what: str, query: str, *, latency: bool = False) -> list[tuple[dict[str, str], float]]:
        return _query(url, what, query, at, file, field, latency)

    requests, errors = (_by_version(ask(what, q(selector, window))) for what, q in (
        ("the scoring requests", queries.requests), ("the server errors", queries.errors)))
    p99 = _by_version(ask("the p99 latency", queries.p99(selector, window), latency=True))
    versions = {v: Traffic(requests[v], errors.get(v, 0.0), _finite(p99.get(v))) for v in requests}
    rows, mirrored = defaultdict(dict), defaultdict(dict)
    for labels, value in ask("the shadows' rows", queries.shadow_rows(selector, window)):
        rows[labels.get("version", "")][labels.get("outcome", "")] = value
    for labels, value in ask("the mirrored requests", queries.shadow_requests(selector, window)):
        mirrored[labels.get("version", "")][labels.get("outcome", "")] = value
    return Observations(f"Prometheus {url}", window, versions, _shadowing(rows, mirrored))


def _query(url: str, what: str, query: str, at: str, file: str, field: str, latency: bool
           ) -> list[tuple[dict[str, str], float]]:
    """The result vector of an instant query (`/api/v1/query`) at time `at`, as (labels, value); `what` the
    query measures, for errors. Counts must be finite and not negative; a latency may be NaN (no answer)."""
    hint = "start Prometheus, or set prometheus_url in [tool.modelops] (or MODELOPS_PROMETHEUS_URL, or " \
           "--prometheus URL) to one that scrapes the runners; --metrics-url reads a runner's /metrics instead"
    address = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query, 'time': at})}"
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT_S) as answer:  # http(s) only: checked by settings
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if exc.code not in (400, 422) or not body.startswith(b"{"):
            raise ModelopsError(f"Prometheus at {url} answered HTTP {exc.code} to /api/v1/query", file=file,
                                field=field, hint="give the address of Prometheus itself (its API is under "
                                                  "/api/v1)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelopsError(f"cannot reach Prometheus at {url}: {getattr(reason, 'strerror', None) or reason}",
                            file=file, field=field, hint=hint) from None
    try:
        data = json.loads(body)
    except ValueError:
        raise ModelopsError(f"{url} did not answer Prometheus's JSON", file=file, field=field, hint=hint) from None
    if isinstance(data, dict) and data.get("status") == "error":
        raise ModelopsError(f"Prometheus refused the query: {data.get('error', data)}", file=file, field=field,
                            hint="check prometheus_selector in [tool.modelops] (PromQL label matchers)")
    try:
        return _vector(data, latency)
    except _Malformed as exc:
        raise ModelopsError(f"Prometheus at {url} answered {what} with {exc}", file=file, field=field,
                            hint="give the address of Prometheus itself (its HTTP API answers /api/v1/query), "
                                 "one that scrapes the runners") from None


class _Malformed(Exception):
    """What is wrong with an answer, as the end of a sentence."""


def _vector(data: object, latency: bool) -> list[tuple[dict[str, str], float]]:
    """The samples of a successful instant query's answer (its `data.result`, an instant vector)."""
    if not isinstance(data, dict) or data.get("status") != "success":
        raise _Malformed(f"{_short(data)} (not a success status)")
    body = data.get("data")
    if not isinstance(body, dict) or not isinstance(body.get("result"), list):
        raise _Malformed(f"{_short(data)} (no data.result list)")
    if body.get("resultType") != "vector":
        raise _Malformed(f"a result of type {_short(body.get('resultType'))}, not an instant vector")
    found = []
    for sample in body["result"]:
        value = sample.get("value") if isinstance(sample, dict) else None
        labels = sample.get("metric", {}) if isinstance(sample, dict) else None
        if not isinstance(labels, dict) or not isinstance(value, list) or len(value) != 2 \
                or not isinstance(value[1], str):
            raise _Malformed(f"the sample {_short(sample)} (not {{metric, value: [time, \"number\"]}})")
        try:
            number = float(value[1])  # Prometheus writes numbers as strings ("NaN" included)
        except ValueError:
            raise _Malformed(f"the value {_short(value[1])}, not a number") from None
        if not (latency and math.isnan(number)) and not (math.isfinite(number) and number >= 0):
            raise _Malformed(f"the value {value[1]!r} of {_short(labels)}: a {'latency' if latency else 'count'} "
                             "is a finite number, not negative")
        found.append(({str(k): str(v) for k, v in labels.items()}, number))
    return found


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _by_version(result: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels.get("version", ""): value for labels, value in result}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _shadowing(rows: dict[str, dict[str, float]], mirrored: dict[str, dict[str, float]]) -> dict[str, Shadowing]:
    return {v: Shadowing(rows=sum(rows.get(v, {}).values()), agreeing=rows.get(v, {}).get("agree", 0.0),
                         scored=mirrored.get(v, {}).get("scored", 0.0), errors=mirrored.get(v, {}).get("error", 0.0))
            for v in sorted(set(rows) | set(mirrored))}


# -- /metrics -------------------------------------------------------------------------------------------
def from_metrics(urls: list[str], model: str, env: str) -> Observations:
    """The deployment's versions since its runners started: each runner's /metrics, added up. A runner
    whose /version names another model or environment is refused (one that asks for an API key there is
    not checked)."""
    for url in urls:
        _check_serves(url, model, env)
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    mirrored: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for url in urls:
        for sample in _samples(url):
            name, labels, value = sample.name, sample.labels, sample.value
            version = labels.get("version", "")
            scoring = labels.get("endpoint") in queries.SCORING
            if name in _COUNTED and not (math.isfinite(value) and value >= 0):
                raise _bad_sample(url, sample, f"the value {value:g}: a count is a finite number, not negative")
            if name == "modelops_requests_total" and scoring:
                requests[version] += value
                errors[version] += value if labels.get("code", "").startswith("5") else 0.0
            elif name == "modelops_request_duration_seconds_bucket" and scoring:
                buckets[version][_bound(url, sample)] += value
            elif name == "modelops_shadow_rows_total":
                rows[version][labels.get("outcome", "")] += value
            elif name == "modelops_shadow_requests_total":
                mirrored[version][labels.get("outcome", "")] += value
    versions = {v: Traffic(requests[v], errors[v], quantile(0.99, buckets.get(v, {}))) for v in requests}
    source = f"/metrics of {len(urls)} runner{'s' if len(urls) > 1 else ''}"
    return Observations(source, None, versions, _shadowing(rows, mirrored))


_COUNTED = ("modelops_requests_total", "modelops_request_duration_seconds_bucket", "modelops_shadow_rows_total",
            "modelops_shadow_requests_total")


def _bound(url: str, sample: Any) -> float:
    """The upper bound (`le`) of a histogram bucket's sample."""
    try:
        bound = float(sample.labels["le"])
    except KeyError:
        raise _bad_sample(url, sample, "no le label (a bucket's upper bound)") from None
    except ValueError:
        raise _bad_sample(url, sample, f"le={sample.labels['le']!r}, not a number") from None
    if math.isnan(bound):
        raise _bad_sample(url, sample, "le=NaN, not a bound")
    return bound


def _bad_sample(url: str, sample: Any, what: str) -> ModelopsError:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
    return ModelopsError(f"{url}: the sample {sample.name}{{{labels}}} has {what}",
                         field="--metrics-url", hint="give a runner's /metrics (modelops serve answers it on its port)")


def _check_serves(url: str, model: str, env: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return  # _samples says so
    try:
        with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/version", timeout=TIMEOUT_S) as answer:
            served = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return  # unreachable: _samples says so; refused (an API key) or not a runner's: not checked here
    if isinstance(served, dict) and (served.get("model"), served.get("environment")) != (model, env):
        raise ModelopsError(f"{url} serves {served.get('model')!r} in {served.get('environment')!r}, not {model!r} "
                            f"in {env!r}", field="--metrics-url", hint="give the runners of this deployment")


def _samples(url: str) -> list:
    """The samples of one runner's /metrics (`url`, or `url` + /metrics when it names no path)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelopsError(f"{url!r} is not an http(s) URL", field="--metrics-url",
                            hint="give a runner's address, such as http://10.0.0.7:8080/metrics")
    if parts.path in ("", "/"):
        url = urllib.parse.urlunsplit(parts._replace(path="/metrics"))
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:  # http(s): checked above
            text = answer.read().decode("utf-8")
        return [s for family in text_string_to_metric_families(text) for s in family.samples]
    except urllib.error.HTTPError as exc:
        raise ModelopsError(f"{url} answered HTTP {exc.code}", field="--metrics-url",
                            hint="give a runner's /metrics (modelops serve answers it on its port)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelopsError(f"cannot reach {url}: {getattr(reason, 'strerror', None) or reason}",
                            field="--metrics-url", hint="is the runner up, and is this its address?") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelopsError(f"{url} did not answer Prometheus text: {exc}", field="--metrics-url",
                            hint="give a runner's /metrics") from None


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a histogram's cumulative buckets {upper bound: count}, interpolated within its
    bucket as Prometheus's histogram_quantile does (None without observations)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf or buckets[math.inf] <= 0:
        return None
    rank = q * buckets[math.inf]
    below, lower = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if upper == math.inf:  # past the last finite bucket: its bound is the best estimate
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        below, lower = count, upper
    return None
