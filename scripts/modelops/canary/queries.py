"""The PromQL a canary verdict reads, over the runners' metrics (docs/runner.md#metrics): one place for
`modelops canary` and the Argo Rollouts analysis, so both judge the same numbers.

`selector` is label matchers without braces (`app_kubernetes_io_name="iris",modelops_environment="production"`);
`by` the labels the sums keep (none: one number).
"""

from __future__ import annotations

SCORING = ("invocations", "predict", "v2")  # the endpoints that score: metadata answers are not judged
_SCORING = f'endpoint=~"{"|".join(SCORING)}"'
_SERVER_ERROR = 'code=~"5.."'


def _sum(by: str, expression: str) -> str:
    return f"sum by ({by}) ({expression})" if by else f"sum({expression})"


def requests(selector: str, window: str, by: str = "version") -> str:
    """Scoring answers in the window."""
    return _sum(by, f"increase(modelops_requests_total{{{selector},{_SCORING}}}[{window}])")


def errors(selector: str, window: str, by: str = "version") -> str:
    """Scoring answers in the window that were server errors (5xx: the model crashed, timed out, ...)."""
    return _sum(by, f"increase(modelops_requests_total{{{selector},{_SCORING},{_SERVER_ERROR}}}[{window}])")


def p99(selector: str, window: str, by: str = "version") -> str:
    """The 99th percentile of the scoring answers' latency in the window, in seconds."""
    keep = f"{by}, le" if by else "le"
    rate = f"rate(modelops_request_duration_seconds_bucket{{{selector},{_SCORING}}}[{window}])"
    return f"histogram_quantile(0.99, sum by ({keep}) ({rate}))"


def once_enough(query: str, selector: str, window: str, min_requests: int, *, errors_above: float | None = None
                ) -> str:
    """`query` once `selector` has `min_requests` scoring answers in the window, and no result before (an
    analysis reads that as inconclusive), as `modelops canary` waits for them; with `errors_above` (a
    bound on the error rate), also as soon as the server errors alone exceed `errors_above` x `min_requests`
    answers (the rate cannot come back under the bound: `modelops canary` rolls back then too)."""
    ready = f"{requests(selector, window, by='')} >= {min_requests}"
    if errors_above is not None:
        ready = f"({ready}) or ({errors(selector, window, by='')} > {errors_above * min_requests:g})"
    return f"({query}) and on() ({ready})"


def shadow_rows(selector: str, window: str, by: str = "version, outcome") -> str:
    """Rows the shadows scored in the window, by agreement (outcome agree or disagree)."""
    return _sum(by, f"increase(modelops_shadow_rows_total{{{selector}}}[{window}])")


def shadow_requests(selector: str, window: str, by: str = "version, outcome") -> str:
    """Requests mirrored to the shadows in the window, by outcome (scored, error, dropped)."""
    return _sum(by, f"increase(modelops_shadow_requests_total{{{selector}}}[{window}])")


def selector(template: str, model: str, env: str) -> str:
    """The `prometheus_selector` setting for one model and environment ({model} and {env} filled in)."""
    return template.replace("{model}", model).replace("{env}", env)
