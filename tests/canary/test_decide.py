"""The verdict of a rollout policy on observations (pure): a table of deployments, policies and numbers."""

from __future__ import annotations

import math

import pytest

from modelops.canary.decide import decide
from modelops.canary.observe import Observations, Shadowing, Traffic, quantile
from modelops.manifest.model import Deployment

POLICY = {"steps": [10, 30, 100], "window": "10m", "min_requests": 100, "max_error_rate": 0.02,
          "max_error_rate_ratio": 2, "max_p99_ratio": 1.5}


def deployment(weight: int | None = 10, shadow: tuple[str, ...] = (), **policy: object) -> Deployment:
    canary = {"canary": {"version": "1.1.0", "weight": weight}} if weight else {}
    return Deployment.model_validate({"version": "1.0.0", **canary, "shadow": list(shadow),
                                      "rollout": {**POLICY, **policy}})


def seen(canary: tuple[float, float, float | None] = (500, 0, 0.010),
         primary: tuple[float, float, float | None] = (5000, 10, 0.010), window: str | None = "10m",
         **shadows: Shadowing) -> Observations:
    return Observations("test", window, {"1.1.0": Traffic(*canary), "1.0.0": Traffic(*primary)},
                        {v.replace("_", "."): s for v, s in shadows.items()})


# (id, deployment, observations, verdict, changes, words in the summary)
CASES = [
    ("healthy-next-step", deployment(10), seen(), "promote", {"canary": {"weight": 30}}, "from 10 % to 30 %"),
    ("healthy-last-step-promotes", deployment(30), seen(), "promote", {"version": "1.1.0", "canary": None},
     "1.1.0: it becomes the version"),
    ("weight-between-steps", deployment(20), seen(), "promote", {"canary": {"weight": 30}}, "20 % to 30 %"),
    ("too-few-answers", deployment(10), seen(canary=(99, 0, 0.01)), "hold", {},
     "canary 1.1.0 answered 99 scoring requests in the last 10m; the policy waits for 100 (min_requests) in 10m"),
    ("too-few-since-start", deployment(10), seen(canary=(3, 0, 0.01), window=None), "hold", {},
     "answered 3 scoring requests since the runners started; the policy waits for 100 (min_requests)"),
    ("no-traffic-at-all", deployment(10), Observations("test", "10m"), "hold", {}, "answered 0 scoring requests"),
    ("error-rate-above", deployment(10), seen(canary=(500, 11, 0.01), primary=(5000, 500, 0.01)), "rollback",
     {"canary": None}, "max_error_rate failed"),
    ("error-rate-ratio-above", deployment(10), seen(canary=(500, 5, 0.01), primary=(5000, 10, 0.01)), "rollback",
     {"canary": None}, "max_error_rate_ratio failed"),
    ("primary-without-errors-admits-none", deployment(10), seen(canary=(500, 1, 0.01), primary=(5000, 0, 0.01)),
     "rollback", {"canary": None}, "max_error_rate_ratio failed"),
    ("both-without-errors", deployment(10), seen(canary=(500, 0, 0.01), primary=(5000, 0, 0.01)), "promote",
     {"canary": {"weight": 30}}, "10 % to 30 %"),
    ("slow-canary", deployment(10), seen(canary=(500, 0, 0.016), primary=(5000, 0, 0.010)), "rollback",
     {"canary": None}, "max_p99_ratio failed"),
    ("failing-fast-before-enough", deployment(10), seen(canary=(40, 3, 0.01)), "rollback", {"canary": None},
     "max_error_rate failed"),
    ("a-few-errors-before-enough-wait", deployment(10), seen(canary=(40, 2, 0.01)), "hold", {},
     "waits for 100"),
    ("primary-idle", deployment(10), seen(primary=(0, 0, None)), "hold", {},
     "the primary 1.0.0 answered no request in the last 10m"),
    ("auto-rollback-noted", deployment(10, auto_rollback=True), seen(canary=(500, 50, 0.01)), "rollback",
     {"canary": None}, "roll back canary 1.1.0 (canary removed)"),
    ("no-canary", deployment(None), seen(), "hold", {}, "nothing to roll out: deployments.production has no canary"),
    ("shadow-without-agreement-bound", deployment(None, ("1.2.0",)), seen(), "hold", {},
     "set min_shadow_agreement to roll out a shadow"),
    ("agreeing-shadow-becomes-canary", deployment(None, ("1.2.0",), min_shadow_agreement=0.99),
     seen(**{"1_2_0": Shadowing(rows=1000, agreeing=995, scored=1000)}), "promote",
     {"shadow": None, "canary": {"version": "1.2.0", "weight": 10}}, "promote shadow 1.2.0 to a canary of 10 %"),
    ("disagreeing-shadow-leaves", deployment(None, ("1.2.0", "1.3.0"), min_shadow_agreement=0.99),
     seen(**{"1_2_0": Shadowing(rows=1000, agreeing=900, scored=1000)}), "rollback", {"shadow": ["1.3.0"]},
     "roll back shadow 1.2.0 (removed from the shadows): min_shadow_agreement failed"),
    ("failing-shadow-leaves", deployment(None, ("1.2.0",), min_shadow_agreement=0.9),
     seen(**{"1_2_0": Shadowing(rows=500, agreeing=500, scored=500, errors=500)}), "rollback", {"shadow": None},
     "max_error_rate failed"),
    ("shadow-too-few", deployment(None, ("1.2.0",), min_shadow_agreement=0.9),
     seen(**{"1_2_0": Shadowing(rows=50, agreeing=50, scored=50)}), "hold", {},
     "shadow 1.2.0 was sent 50 mirrored requests in the last 10m; the policy waits for 100"),
]


@pytest.mark.parametrize(("subject", "observed", "verdict", "changes", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_verdict(subject: Deployment, observed: Observations, verdict: str, changes: dict, words: str) -> None:
    result = decide("production", subject, observed)
    assert (result.verdict, result.changes) == (verdict, changes), result
    assert words in result.summary, result.summary
    assert result.exit_code == {"promote": 0, "hold": 2, "rollback": 3}[verdict]
    assert result.auto_merge == (verdict == "rollback" and subject.rollout.auto_rollback)


def test_every_check_says_its_numbers() -> None:
    result = decide("production", deployment(10), seen(canary=(500, 5, 0.012), primary=(5000, 10, 0.010)))
    assert [(c.name, c.ok) for c in result.checks] == [
        ("min_requests", True), ("max_error_rate", True), ("max_error_rate_ratio", False), ("max_p99_ratio", True)]
    assert [c.text for c in result.checks][1:] == [
        "error rate 1.00 % (5 of 500) vs at most 2.00 % (max_error_rate)",
        "error rate 1.00 % (5 of 500) vs at most 2 x the primary's 0.20 % = 0.40 % (max_error_rate_ratio)",
        "p99 12.0 ms vs at most 1.5 x the primary's 10.0 ms = 15.0 ms (max_p99_ratio)",
    ]


@pytest.mark.parametrize(("buckets", "expected"), [
    ({0.01: 0, 0.1: 100, math.inf: 100}, 0.0991),  # inside a bucket, interpolated linearly from its lower bound
    ({0.01: 50, 0.1: 98, math.inf: 100}, 0.1),  # past the last finite bucket: its bound
    ({0.01: 100, math.inf: 100}, 0.0099),  # the first bucket starts at 0
    ({0.01: 0, math.inf: 0}, None),  # nothing observed
    ({}, None),
])
def test_the_quantile_of_a_histogram_is_prometheus_s(buckets: dict, expected: float | None) -> None:
    found = quantile(0.99, buckets)
    assert found == expected if expected is None else found == pytest.approx(expected)


@pytest.mark.parametrize(("changed", "verdict", "words"), [
    (("ab" * 20, 120.0), "hold", "the manifest changed 2m00s ago (commit abababababab): each step lasts at least "
                                 "10m (window) before the next"),
    (("", 0.0), "hold", "the manifest changed 0s ago (not committed yet)"),
    (("ab" * 20, 600.0), "promote", "from 10 % to 30 %"),
    (None, "promote", "from 10 % to 30 %"),  # outside git: nothing to wait for
])
def test_a_step_lasts_at_least_the_window(changed: tuple | None, verdict: str, words: str) -> None:
    result = decide("production", deployment(10), seen(), changed)
    assert (result.verdict, words in result.summary) == (verdict, True), result.summary
    assert result.changes == ({} if verdict == "hold" else {"canary": {"weight": 30}})


def test_a_rollback_never_waits_for_the_window() -> None:
    result = decide("production", deployment(10), seen(canary=(500, 100, 0.01)), ("ab" * 20, 1.0))
    assert (result.verdict, result.changes) == ("rollback", {"canary": None})
