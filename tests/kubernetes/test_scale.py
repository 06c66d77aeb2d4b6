"""The manifest's `scale` (replicas, resources, autoscaling): defaults, and clear errors for bad values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from modelops.errors import ModelopsError
from modelops.manifest import quantity
from modelops.manifest.loading import load


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("0.25", Decimal("0.25")), ("512Mi", Decimal(512 * 2**20)),
    ("1Gi", Decimal(2**30)), ("1G", Decimal(10**9)), ("300k", Decimal(300_000)), ("1e3", Decimal(1000)),
])
def test_quantity_values(text, value):
    assert quantity.value(text) == value


def _problems(repo, edit_manifest, scale):
    def change(data: dict) -> None:
        data["deployments"]["production"]["scale"] = scale

    edit_manifest("iris", change)
    with pytest.raises(ModelopsError) as caught:
        load(repo / "models/iris", repo)
    return caught.value.problems


BAD = [
    ({"resources": {"requests": {"cpu": "250m", "memory": "512mb"}}},
     "deployments.production.scale.resources.requests.memory",
     "not a Kubernetes memory quantity (got '512mb')",
     "did you mean 512Mi? Memory takes Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000); "
     "a lone m means 1/1000 byte"),
    ({"resources": {"limits": {"cpu": "1", "memory": "2 GB"}}},
     "deployments.production.scale.resources.limits.memory", "not a Kubernetes memory quantity (got '2 GB')",
     "did you mean 2Gi? Memory takes Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000); "
     "a lone m means 1/1000 byte"),
    ({"resources": {"limits": {"cpu": "1", "memory": "512m"}}},
     "deployments.production.scale.resources.limits.memory", "not a Kubernetes memory quantity (got '512m')",
     "did you mean 512Mi? Memory takes Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000); "
     "a lone m means 1/1000 byte"),
    ({"resources": {"requests": {"cpu": "250m", "memory": 512}}},
     "deployments.production.scale.resources.requests.memory", "too little memory (got 512)",
     "did you mean 512Mi? A number alone counts bytes"),
    ({"resources": {"requests": {"cpu": "2 cores", "memory": "512Mi"}}},
     "deployments.production.scale.resources.requests.cpu", "not a Kubernetes CPU quantity (got '2 cores')",
     "write cores (1, 0.5) or millicores (500m), at least 1m"),
    ({"resources": {"requests": {"cpu": True, "memory": "512Mi"}}},
     "deployments.production.scale.resources.requests.cpu", "not a Kubernetes CPU quantity (got True)",
     "write cores (1, 0.5) or millicores (500m), at least 1m"),
    ({"resources": {"requests": {"cpu": "2", "memory": "512Mi"}}},
     "deployments.production.scale.resources", "requests.cpu 2 is more than limits.cpu 1",
     "raise limits.cpu or lower requests.cpu"),
    ({"autoscaling": {"min_replicas": 6, "max_replicas": 3}},
     "deployments.production.scale.autoscaling", "min_replicas 6 is more than max_replicas 3",
     "make max_replicas at least min_replicas"),
    ({"replicas": 3, "autoscaling": {"max_replicas": 4}},
     "deployments.production.scale", "replicas and autoscaling both set the replica count",
     "keep replicas for a fixed count, or autoscaling.min_replicas/max_replicas"),
    ({"replica": 3},
     "deployments.production.scale.replica", "unknown field", "did you mean 'replicas'?"),
    ({"autoscaling": {"target_cpu_percent": 5}},
     "deployments.production.scale.autoscaling.target_cpu_percent",
     "Input should be greater than or equal to 10 (got 5)", ""),
]


@pytest.mark.parametrize(("scale", "field", "message", "hint"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_scale_is_located_and_explained(repo, edit_manifest, scale, field, message, hint):
    problems = _problems(repo, edit_manifest, scale)
    assert [(p.field, p.message, p.hint) for p in problems] == [(field, message, hint)]
    assert problems[0].file == "models/iris/model.yaml" and problems[0].line


def test_defaults_and_fixed_replicas(repo, edit_manifest):
    def change(data: dict) -> None:
        data["deployments"]["staging"]["scale"] = {"replicas": 3, "resources": {
            "requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"cpu": 2, "memory": "2Gi"}}}

    edit_manifest("iris", change)
    manifest = load(repo / "models/iris", repo).manifest
    production, staging = manifest.deployments["production"].scale, manifest.deployments["staging"].scale
    assert production.autoscaling is not None
    assert (production.autoscaling.min_replicas, production.autoscaling.max_replicas) == (2, 5)
    assert production.resources.requests.model_dump() == {"cpu": "250m", "memory": "512Mi"}
    assert (staging.replicas, staging.autoscaling) == (3, None)
    assert staging.resources.requests.cpu == "0.5" and staging.resources.limits.cpu == "2"


def test_validate_fails_on_a_wrong_memory_unit(repo, modelops, edit_manifest):
    def change(data: dict) -> None:
        limits = {"cpu": "1", "memory": "512mb"}
        data["deployments"]["production"]["scale"] = {"resources": {"limits": limits}}

    edit_manifest("iris", change)
    result = modelops("validate", "--offline", "models/iris")
    assert result.returncode == 1
    assert "models/iris/model.yaml:" in result.stderr
    assert ("deployments.production.scale.resources.limits.memory: not a Kubernetes memory quantity "
            "(got '512mb')\n  hint: did you mean 512Mi?") in result.stderr
    assert "Traceback" not in result.stderr
