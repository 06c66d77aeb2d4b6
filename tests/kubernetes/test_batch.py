"""`deployments.<env>.batch`: a CronJob running `python -m modelops score`, strictly valid, arguments as a list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BATCH = {"schedule": "0 2 * * *", "input": "s3://data-lake/diabetes/rows.parquet",
         "output": "s3://data-lake/diabetes/scored.parquet", "rejects": "s3://data-lake/diabetes/rejects.jsonl",
         "keep": ["patient_id"]}


def _with_batch(batch: dict) -> object:
    def change(data: dict) -> None:
        data["deployments"]["production"]["batch"] = batch
    return change


@pytest.mark.parametrize("version", ["1.27.0", "1.37.0"])
def test_the_cronjob_passes_kubernetes_validate_strict(repo, modelops, edit_manifest, version):
    edit_manifest("diabetes", _with_batch(BATCH))
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 0, result.stderr
    path = repo / "deploy/production/diabetes/cronjob.yaml"
    check = subprocess.run([Path(sys.executable).parent / "kubernetes-validate", "--strict", "-k", version, str(path)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and " passed " in check.stdout, check.stdout + check.stderr
    kustomization = yaml.safe_load((repo / "deploy/production/kustomization.yaml").read_text())
    assert "diabetes/cronjob.yaml" in kustomization["resources"]
    assert not (repo / "deploy/staging/diabetes/cronjob.yaml").exists()  # staging declares no batch


def test_the_cronjob_scores_the_primary_version_with_its_arguments_as_a_list(repo, modelops, edit_manifest):
    def change(data: dict) -> None:
        data["deployments"]["production"]["batch"] = {"schedule": "@daily", "input": "https://data.internal/rows.csv",
                                                      "output": "gs://scores/iris/scored.csv"}
    edit_manifest("iris", change)
    rendered = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert rendered.returncode == 0, rendered.stderr
    assert ("models/iris/model.yaml: deployments.production.batch: the image has no mlflow-skinny, "
            "google-cloud-storage, which its CronJob needs") in rendered.stderr
    cronjob = yaml.safe_load((repo / "deploy/production/iris/cronjob.yaml").read_text())
    assert (cronjob["metadata"]["name"], cronjob["spec"]["schedule"]) == ("iris", "@daily")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "127.0.0.1:5000/models/iris:1.0.0"  # the primary's image; the canary is not used
    assert container["command"] == ["python", "-m", "modelops", "score", "/model", "--version", "1.0.0", "--env",
                                    "production", "--input", "https://data.internal/rows.csv", "--output",
                                    "gs://scores/iris/scored.csv", "--no-progress"]
    assert "args" not in container and pod["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    # the batch pods are not the Deployment's: its Service and PodDisruptionBudget never select them
    deployment = yaml.safe_load((repo / "deploy/production/iris/deployment.yaml").read_text())
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "batch"
    with (repo / "models/iris/requirements.txt").open("a") as requirements:
        requirements.write("mlflow-skinny==3.1.0\ngoogle-cloud-storage==3.1.0\n")
    kserve = modelops("render", "--target", "kserve", "--out", "kserve")
    assert kserve.returncode == 0 and (repo / "kserve/production/iris/cronjob.yaml").is_file()
    assert "batch" not in kserve.stderr  # what the URIs need is pinned: nothing to say


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("schedule", "0 25 * * *", "deployments.production.batch.schedule: not a cron schedule: the hour field '25' "
                               "is outside 0-23"),
    ("schedule", "0 2 * *", "not a cron schedule: 4 field(s) where a cron line has 5"),
    ("schedule", "0 2 * * *; rm -rf /", "not a cron schedule"),
    ("input", "ftp://host/rows.csv", "deployments.production.batch.input: 'ftp://host/rows.csv' is not valid"),
    ("input", "s3://bucket/$(curl evil)/rows.csv", "deployments.production.batch.input"),
    ("input", "s3://bucket/a/../../rows.csv", "deployments.production.batch.input: a . or .. path segment"),
    ("output", "https://host/scored.csv", "outputs go to a store"),
    ("output", "s3://bucket/scored.txt", "deployments.production.batch.output"),
    ("keep", ["id; rm"], "deployments.production.batch.keep[0]"),
    ("when", "daily", "deployments.production.batch.when"),
])
def test_a_bad_batch_field_is_refused_before_anything_renders(repo, modelops, edit_manifest, field, value, expected):
    edit_manifest("diabetes", _with_batch({**BATCH, field: value}))
    result = modelops("render", "--target", "kubernetes", "--out", "deploy")
    assert result.returncode == 1 and expected in result.stderr and "hint: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (repo / "deploy").exists()
