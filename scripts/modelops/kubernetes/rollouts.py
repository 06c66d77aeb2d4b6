"""Argo Rollouts for an environment with a rollout policy: a Rollout referencing the environment's
Deployment (`workloadRef`: the pod template stays in one place) that moves each new pod template through
the policy's steps, and an AnalysisTemplate that queries Prometheus with the policy's bounds at each step,
comparing the new pods with the stable ones by their `rollouts-pod-template-hash` label."""

from __future__ import annotations

from modelops.canary import queries
from modelops.errors import ModelopsError
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Rollout
from modelops.settings import Settings

_HASH = "rollouts_pod_template_hash"  # the pod label rollouts-pod-template-hash, as Prometheus relabels it
CANARY, STABLE = "{{args.canary-hash}}", "{{args.stable-hash}}"  # filled in by Argo Rollouts


def analysis(loaded: LoadedManifest, env: str, conf: Settings) -> dict:
    """The template variables of the Rollout and the AnalysisTemplate: `steps` (weights below 100),
    `pause` (the window), `prometheus` (its address) and `metrics` [{name, query, success, failure}]."""
    policy = loaded.manifest.deployments[env].rollout
    assert policy is not None
    if not conf.prometheus_url:
        raise ModelopsError(f"deployments.{env}.rollout needs Prometheus for its Argo Rollouts analysis",
                            file=conf.sources.get("prometheus_url", "pyproject.toml").replace("(default)",
                                                                                           "pyproject.toml"),
                            field="tool.modelops.prometheus_url",
                            hint="set prometheus_url in [tool.modelops] (or MODELOPS_PROMETHEUS_URL) to the address "
                                 "the analysis runs query, such as http://prometheus.monitoring:9090")
    base = queries.selector(conf.prometheus_selector, loaded.manifest.name, env)
    return {"steps": policy.steps[:-1], "pause": policy.window, "prometheus": conf.prometheus_url,
            "metrics": _metrics(policy, f'{base},{_HASH}="{CANARY}"', f'{base},{_HASH}="{STABLE}"',
                                bool(loaded.manifest.deployments[env].shadow))}


def _metrics(policy: Rollout, canary: str, stable: str, shadowed: bool) -> list[dict]:
    """One metric per bound: it succeeds within the bound and fails outside it; before the new pods have
    `min_requests` answers in the window (or with no data), neither: the measurement is inconclusive and
    the rollout pauses, as `modelops canary` holds (the error rate fails early when its errors alone
    already exceed what `min_requests` answers allow, as there)."""
    window, least = policy.window, policy.min_requests

    def rate(selector: str) -> str:
        errors, answers = queries.errors(selector, window, by=""), queries.requests(selector, window, by="")
        return f"(({errors}) or vector(0)) / {answers}"

    def judged(query: str, errors_above: float | None = None) -> str:
        return queries.once_enough(query, canary, window, least, errors_above=errors_above)

    found = [_metric("min-requests", queries.requests(canary, window, by=""), f">= {least}", "false")]
    if policy.max_error_rate is not None:
        found.append(_within("max-error-rate", judged(rate(canary), policy.max_error_rate), policy.max_error_rate))
    if policy.max_error_rate_ratio is not None:
        found.append(_within("max-error-rate-ratio", judged(f"{rate(canary)} - {policy.max_error_rate_ratio:g} * "
                                                            f"{rate(stable)}"), 0))
    if policy.max_p99_ratio is not None:
        p99 = f"{queries.p99(canary, window, by='')} - {policy.max_p99_ratio:g} * {queries.p99(stable, window, by='')}"
        found.append(_within("max-p99-ratio", judged(p99), 0))
    if policy.min_shadow_agreement is not None and shadowed:
        agree = queries.shadow_rows(canary.replace(f",{_HASH}", f',outcome="agree",{_HASH}'), window, by="")
        found.append(_metric("min-shadow-agreement",
                             judged(f"{agree} / {queries.shadow_rows(canary, window, by='')}"),
                             f">= {policy.min_shadow_agreement:g}", f"< {policy.min_shadow_agreement:g}"))
    return found


def _within(name: str, query: str, bound: float) -> dict:
    return _metric(name, query, f"<= {bound:g}", f"> {bound:g}")


def _metric(name: str, query: str, success: str, failure: str) -> dict:
    """Conditions on the first value; an empty answer (no such series yet) is neither success nor failure."""
    return {"name": name, "query": query, "success": f"len(result) > 0 && result[0] {success}",
            "failure": failure if failure == "false" else f"len(result) > 0 && result[0] {failure}"}
