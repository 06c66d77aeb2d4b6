"""The verdict of a rollout policy on what the runners did: promote, hold or roll back, with the numbers
that justify it and the change to the deployment (pure: no I/O).

The candidate is the deployment's canary; with no canary, its first shadow when the policy sets
`min_shadow_agreement` (a shadow that agrees enters the canary at the first step). A failed bound rolls
back at once, even before `min_requests` answers when the errors already exceed what those answers
allow; otherwise a verdict waits for `min_requests` answers of the candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from modelops.canary.observe import Observations, Shadowing, Traffic
from modelops.manifest.model import Deployment, Rollout, seconds
from modelops.manifest.serving import Serving

EXIT_CODES = {"promote": 0, "hold": 2, "rollback": 3}  # 1: an error


@dataclass(frozen=True)
class Check:
    """One bound of the policy against what was observed (`ok` None: too few answers to judge)."""

    name: str  # the policy's field
    observed: float | None
    bound: float
    ok: bool | None
    text: str


@dataclass(frozen=True)
class Decision:
    verdict: str  # promote | hold | rollback
    summary: str
    primary: str
    candidate: str | None
    checks: list[Check] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)  # to deployments.<env> (None: key removed); {}: none
    auto_merge: bool = False  # a rollback the policy lets merge without a review

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def serving(self, current: Serving) -> Serving:
        """What the deployment serving `current` serves once `changes` are made."""
        canary = current.canary
        if "canary" in self.changes:
            wanted = self.changes["canary"]
            canary = None if wanted is None else (wanted.get("version", canary[0] if canary else None),
                                                  wanted.get("weight", canary[1] if canary else None))
        shadow = tuple(self.changes.get("shadow") or ()) if "shadow" in self.changes else current.shadow
        return Serving(self.changes.get("version", current.version), canary, shadow)

    def to_json(self) -> dict:
        return asdict(self)


def decide(env: str, deployment: Deployment, observed: Observations, changed: tuple[str, float] | None = None
           ) -> Decision:
    """The verdict of `deployment.rollout` (which must be set) on `observed`. `changed`: the last commit of
    the manifest and how many seconds ago it was made; a promotion waits until it is a window old, so that
    each step lasts at least the window (a rollback never waits)."""
    policy = deployment.rollout
    assert policy is not None
    if deployment.canary:
        found = _canary(deployment, policy, observed)
    elif deployment.shadow and policy.min_shadow_agreement is not None:
        found = _shadow(deployment, policy, observed)
    else:
        why = " (set min_shadow_agreement to roll out a shadow)" if deployment.shadow else ""
        return Decision("hold", f"nothing to roll out: deployments.{env} has no canary{why}", deployment.version,
                        None)
    if found.verdict == "promote" and changed is not None and changed[1] < seconds(policy.window):
        wait = Check("window", changed[1], seconds(policy.window), None,
                     f"the manifest changed {_duration(changed[1])} ago "
                     f"({f'commit {changed[0][:12]}' if changed[0] else 'not committed yet'}): each step lasts at "
                     f"least {policy.window} (window) before the next")
        return replace(found, verdict="hold", summary=wait.text, checks=[*found.checks, wait], changes={})
    return found


def _canary(deployment: Deployment, policy: Rollout, observed: Observations) -> Decision:
    assert deployment.canary is not None
    name, primary = deployment.canary.version, deployment.version
    canary = observed.versions.get(name, Traffic())
    main = observed.versions.get(primary, Traffic())
    enough = canary.requests >= policy.min_requests
    checks = [_requests(f"canary {name} answered {count(canary.requests)} scoring requests", canary.requests,
                        policy, observed)]
    rate = canary.errors / canary.requests if canary.requests else None
    errors = f"{count(canary.errors)} of {count(canary.requests)}"
    if policy.max_error_rate is not None:
        checks.append(_error_rate(rate, canary.errors, errors, policy.max_error_rate, policy, enough))
    if policy.max_error_rate_ratio is not None:
        ratio = policy.max_error_rate_ratio
        base = main.errors / main.requests if main.requests else None
        if base is None or not enough:
            why = f"the primary {primary} answered no request {observed.span}" if base is None else "too few answers"
            checks.append(Check("max_error_rate_ratio", rate, 0.0 if base is None else ratio * base, None,
                                f"error rate ratio: not judged yet ({why})"))
        else:
            assert rate is not None
            ceiling = ratio * base
            checks.append(Check("max_error_rate_ratio", rate, ceiling, rate <= ceiling,
                                f"error rate {_pct(rate)} ({errors}) vs at most {_num(ratio)} x the primary's "
                                f"{_pct(base)} = {_pct(ceiling)} (max_error_rate_ratio)"))
    if policy.max_p99_ratio is not None:
        ratio = policy.max_p99_ratio
        if canary.p99_s is None or main.p99_s is None or not enough:
            who = name if canary.p99_s is None else primary
            why = f"no latency of {who} {observed.span}" if enough else "too few answers"
            checks.append(Check("max_p99_ratio", canary.p99_s, 0.0, None, f"p99 ratio: not judged yet ({why})"))
        else:
            ceiling = ratio * main.p99_s
            checks.append(Check("max_p99_ratio", canary.p99_s, ceiling, canary.p99_s <= ceiling,
                                f"p99 {ms(canary.p99_s)} vs at most {_num(ratio)} x the primary's "
                                f"{ms(main.p99_s)} = {ms(ceiling)} (max_p99_ratio)"))
    return _verdict(deployment, policy, name, checks, "canary")


def _shadow(deployment: Deployment, policy: Rollout, observed: Observations) -> Decision:
    assert policy.min_shadow_agreement is not None
    name = deployment.shadow[0]
    shadow = observed.shadows.get(name, Shadowing())
    mirrored = shadow.scored + shadow.errors
    enough = mirrored >= policy.min_requests
    checks = [_requests(f"shadow {name} was sent {count(mirrored)} mirrored requests", mirrored, policy, observed)]
    agreement = shadow.agreeing / shadow.rows if shadow.rows else None
    minimum = policy.min_shadow_agreement
    checks.append(Check("min_shadow_agreement", agreement, minimum,
                        None if not enough or agreement is None else agreement >= minimum,
                        f"shadow agreement {_pct(agreement)} ({count(shadow.agreeing)} of {count(shadow.rows)} "
                        f"rows) vs at least {_pct(minimum)} (min_shadow_agreement)"))
    if policy.max_error_rate is not None:
        rate = shadow.errors / mirrored if mirrored else None
        checks.append(_error_rate(rate, shadow.errors, f"{count(shadow.errors)} of {count(mirrored)}",
                                  policy.max_error_rate, policy, enough))
    return _verdict(deployment, policy, name, checks, "shadow")


def _requests(text: str, answers: float, policy: Rollout, observed: Observations) -> Check:
    ok = True if answers >= policy.min_requests else None
    window = f" in {observed.window} (window)" if observed.window else ""
    wait = "" if ok else f"; the policy waits for {policy.min_requests:,} (min_requests){window}"
    return Check("min_requests", answers, policy.min_requests, ok, f"{text} {observed.span}{wait}")


def _error_rate(rate: float | None, errors: float, counted: str, bound: float, policy: Rollout,
                enough: bool) -> Check:
    """Judged on enough answers; before that, failed only when the errors alone exceed what min_requests
    answers allow (the rate cannot come back under the bound)."""
    ok = (rate is not None and rate <= bound) if enough else (False if errors > bound * policy.min_requests else None)
    tail = "" if enough or ok is False else ", not judged yet (too few answers)"
    return Check("max_error_rate", rate, bound, ok,
                 f"error rate {_pct(rate)} ({counted}) vs at most {_pct(bound)} (max_error_rate){tail}")


def _verdict(deployment: Deployment, policy: Rollout, name: str, checks: list[Check], role: str) -> Decision:
    primary = deployment.version
    others = [v for v in deployment.shadow if v != name]
    failed = [c.name for c in checks if c.ok is False]
    if failed:
        changes: dict[str, Any] = {"canary": None} if role == "canary" else {"shadow": others or None}
        undo = "canary removed" if role == "canary" else "removed from the shadows"
        return Decision("rollback", f"roll back {role} {name} ({undo}): {', '.join(failed)} failed", primary, name,
                       checks, changes, policy.auto_rollback)
    if any(c.ok is None for c in checks):
        waiting = next(c for c in checks if c.ok is None)
        return Decision("hold", waiting.text, primary, name, checks)
    weight = deployment.canary.weight if role == "canary" and deployment.canary else 0
    step = next(s for s in policy.steps if s > weight)
    changes = {"shadow": others or None} if name in deployment.shadow else {}
    if step == 100:
        changes |= {"version": name, "canary": None}
        summary = f"promote {name}: it becomes the version ({role} removed)"
    elif role == "canary":
        changes |= {"canary": {"weight": step}}
        summary = f"promote canary {name} from {weight} % to {step} %"
    else:
        changes |= {"canary": {"version": name, "weight": step}}
        summary = f"promote shadow {name} to a canary of {step} %"
    return Decision("promote", summary, primary, name, checks, changes)


def count(value: float) -> str:
    """A count as people read it: 1,234."""
    return f"{round(value):,}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def ms(seconds: float | None) -> str:
    """A latency in milliseconds: 12.3 ms (n/a: none measured)."""
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _num(value: float) -> str:
    return f"{value:g}"


def _duration(value: float) -> str:
    whole = max(0, round(value))
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"
