"""An environment with a rollout policy also renders an Argo Rollouts Rollout (referencing its Deployment)
and an AnalysisTemplate with the policy's bounds; both pass the schema of the upstream CRDs.

`schemas/argo-rollouts-rollout.yaml` and `schemas/argo-rollouts-analysistemplate.yaml` are the CRDs of
argoproj/argo-rollouts (manifests/crds/rollout-crd.yaml and analysis-template-crd.yaml, commit
9f8d111d8f8e3e88b6d7f8bbdf62fd3cd863ef9d), unchanged.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

SCHEMAS = Path(__file__).parent / "schemas"
POLICY = {"steps": [10, 30, 100], "window": "10m", "min_requests": 500, "max_error_rate": 0.01,
          "max_error_rate_ratio": 2, "max_p99_ratio": 1.5, "min_shadow_agreement": 0.99}
PROMETHEUS = "http://prometheus.monitoring:9090"


@functools.cache
def crd_schema(name: str) -> dict:
    """The CRD's structural schema as JSON Schema, closed as the API server's strict field validation is:
    an object with properties takes no other field unless it says x-kubernetes-preserve-unknown-fields."""
    crd = yaml.load((SCHEMAS / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    return _closed(version["schema"]["openAPIV3Schema"])


def _closed(schema: dict) -> dict:
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _closed(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_closed(sub) for sub in value]
        elif not key.startswith("x-kubernetes-"):
            out[key] = value
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture
def rendered(repo, modelops, edit_manifest, monkeypatch) -> Path:
    edit_manifest("iris", lambda data: data["deployments"]["production"].update(rollout=dict(POLICY)))
    monkeypatch.setenv("MODELOPS_PROMETHEUS_URL", PROMETHEUS)
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 0, result.stderr
    return repo / "deploy"


def test_the_rollout_and_its_analysis_pass_the_upstream_crds(rendered: Path) -> None:
    rollout = yaml.safe_load((rendered / "production/iris/rollout.yaml").read_text())
    analysis = yaml.safe_load((rendered / "production/iris/analysistemplate.yaml").read_text())
    jsonschema.validate(rollout, crd_schema("argo-rollouts-rollout.yaml"))
    jsonschema.validate(analysis, crd_schema("argo-rollouts-analysistemplate.yaml"))
    kustomization = yaml.safe_load((rendered / "production/kustomization.yaml").read_text())
    assert {"iris/rollout.yaml", "iris/analysistemplate.yaml"} <= set(kustomization["resources"])
    assert not (rendered / "staging/iris/rollout.yaml").exists()  # no policy there: a Deployment alone


def test_the_crd_schemas_are_strict(rendered: Path) -> None:
    rollout = yaml.safe_load((rendered / "production/iris/rollout.yaml").read_text())
    rollout["spec"]["strategy"]["canary"]["steps"][0]["setWeigth"] = 10
    with pytest.raises(jsonschema.ValidationError, match="setWeigth"):
        jsonschema.validate(rollout, crd_schema("argo-rollouts-rollout.yaml"))


def test_the_rollout_takes_the_deployment_s_pods_through_the_policy_s_steps(rendered: Path) -> None:
    rollout = yaml.safe_load((rendered / "production/iris/rollout.yaml").read_text())
    spec = rollout["spec"]
    assert spec["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris",
                                   "scaleDown": "progressively"}
    steps = spec["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [10, 30]  # then 100: the promotion
    assert [s["pause"] for s in steps if "pause" in s] == [{"duration": "10m"}] * 2
    (analysis,) = {s["analysis"]["templates"][0]["templateName"] for s in steps if "analysis" in s}
    assert analysis == "iris-production"
    assert "replicas" not in spec  # the autoscaler scales the Rollout
    hpa = yaml.safe_load((rendered / "production/iris/horizontalpodautoscaler.yaml").read_text())
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "iris"}
    deployment = yaml.safe_load((rendered / "production/iris/deployment.yaml").read_text())
    assert "replicas" not in deployment["spec"]
    files = [str(p) for p in (rendered / "production/iris").glob("*.yaml")
             if yaml.safe_load(p.read_text())["kind"] in ("Deployment", "HorizontalPodAutoscaler")]
    checked = subprocess.run([Path(sys.executable).parent / "kubernetes-validate", "--strict", *files],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_analysis_holds_the_policy_s_bounds(rendered: Path) -> None:
    analysis = yaml.safe_load((rendered / "production/iris/analysistemplate.yaml").read_text())
    metrics = {m["name"]: m for m in analysis["spec"]["metrics"]}
    assert list(metrics) == ["min-requests", "max-error-rate", "max-error-rate-ratio", "max-p99-ratio",
                             "min-shadow-agreement"]
    assert metrics["min-requests"]["successCondition"] == "len(result) > 0 && result[0] >= 500"
    assert metrics["min-requests"]["failureCondition"] == "false"  # too few answers: inconclusive, paused
    assert metrics["max-error-rate"]["failureCondition"] == "len(result) > 0 && result[0] > 0.01"
    assert " - 2 * " in metrics["max-error-rate-ratio"]["provider"]["prometheus"]["query"]
    assert " - 1.5 * histogram_quantile(0.99" in metrics["max-p99-ratio"]["provider"]["prometheus"]["query"]
    pods = 'app_kubernetes_io_name="iris",modelops_environment="production",rollouts_pod_template_hash=' \
           '"{{args.canary-hash}}",endpoint=~"invocations|predict|v2"'
    served, failed = f"sum(increase(modelops_requests_total{{{pods}}}[10m]))", \
        f'sum(increase(modelops_requests_total{{{pods},code=~"5.."}}[10m]))'
    for name in ("max-error-rate-ratio", "max-p99-ratio", "min-shadow-agreement"):  # judged on 500 answers
        assert metrics[name]["provider"]["prometheus"]["query"].endswith(f") and on() ({served} >= 500)"), name
    assert metrics["max-error-rate"]["provider"]["prometheus"]["query"].endswith(  # or errors 0.01 x 500 can't undo
        f") and on() (({served} >= 500) or ({failed} > 5))")
    for metric in metrics.values():
        prometheus = metric["provider"]["prometheus"]
        assert prometheus["address"] == PROMETHEUS
        assert 'app_kubernetes_io_name="iris",modelops_environment="production",' \
               'rollouts_pod_template_hash="{{args.canary-hash}}"' in prometheus["query"]
        assert "[10m]" in prometheus["query"]


def test_a_rollout_without_prometheus_is_refused_naming_the_setting(repo, modelops, edit_manifest,
                                                                     monkeypatch) -> None:
    edit_manifest("iris", lambda data: data["deployments"]["production"].update(rollout=dict(POLICY)))
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 1
    assert result.stderr.startswith("pyproject.toml: tool.modelops.prometheus_url: deployments.production.rollout "
                                    "needs Prometheus for its Argo Rollouts analysis"), result.stderr
    assert not (repo / "deploy").exists()


def test_kserve_gets_no_analysis_and_says_so(repo, modelops, edit_manifest, monkeypatch) -> None:
    edit_manifest("iris", lambda data: data["deployments"]["production"].update(rollout=dict(POLICY)))
    monkeypatch.setenv("MODELOPS_PROMETHEUS_URL", PROMETHEUS)
    result = modelops("render", "--target", "kserve", "--out", "deploy")
    assert result.returncode == 0, result.stderr
    assert "deployments.production.rollout: KServe gets no analysis" in result.stderr
    assert sorted(p.name for p in (repo / "deploy/production/iris").iterdir()) == ["inferenceservice.yaml"]
