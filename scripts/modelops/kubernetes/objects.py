"""Kubernetes objects of each model and environment, rendered from `templates/kubernetes/` (pure: no writes)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from modelops import templates
from modelops.errors import ModelopsError
from modelops.images import deploy
from modelops.images.context import PORT, UID
from modelops.kubernetes import rollouts
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Batch, Deployment
from modelops.settings import Settings

TARGETS = ("deployment", "kserve")
KINDS = {"deployment": ("deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget"),
         "kserve": ("inferenceservice",)}
ROLLOUT_KINDS = ("rollout", "analysistemplate")  # beside the Deployment, for an environment with a rollout policy
HEADER = "# Rendered by `modelops render`"
GITOPS = "gitops"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Pod shutdown: the preStop sleep keeps the pod serving while the endpoints drop it; then SIGTERM, and the
# runner drains within its grace; the kubelet kills only after both, plus a margin.
PRE_STOP_S = 5
TERMINATION_GRACE_S = PRE_STOP_S + deploy.SHUTDOWN_GRACE_S + 5
# Scheduled batch scoring (deployments.<env>.batch): a CronJob, whose Jobs add 11 characters to its name
CRONJOB_NAME_MAX = 52
BATCH_SCRATCH = "8Gi"  # the /tmp of a batch pod: the downloaded input and the output before its upload


def namespace(env: str) -> str:
    """The namespace an environment runs in."""
    return f"models-{env}"


def fill(root: Path, name: str, context: dict) -> str:
    """Render one template and check it is one YAML mapping, so no value can have changed its shape."""
    text = templates.render(f"kubernetes/{name}.yaml.j2", {"header": HEADER, **context}, root, blocks=True)
    documents = list(yaml.load_all(text, Loader=_LOADER))
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ModelopsError(f"templates/kubernetes/{name}.yaml.j2 did not render one YAML mapping",
                            hint="check the template")
    return text


def objects(loaded: LoadedManifest, env: str, target: str, refs: dict[str, dict[str, str]] | None,
            conf: Settings, root: Path) -> dict[str, str]:
    """The files of one model in one environment: {file name: text}; images by tag when `refs` (from
    `--images`) is None; with a rollout policy, an Argo Rollouts Rollout and AnalysisTemplate too. Pure:
    writes nothing."""
    registry = conf.image_registry
    m = loaded.manifest
    deployment = m.deployments[env]
    for value, what in ((m.name, "model name"), (env, "environment name")):
        if not _DNS_LABEL.match(value):
            raise ModelopsError(f"{what} {value!r} cannot name Kubernetes objects", file=loaded.display,
                                hint="end it with a letter or a digit (DNS label)")
    if env == GITOPS:
        raise ModelopsError(f"environment name {env!r} is reserved for the Argo CD and Flux objects",
                            file=loaded.display, field=f"deployments.{env}", hint="name the environment otherwise")
    if target == "kserve":
        version = deployment.canary.version if deployment.canary else deployment.version
        image = deploy.image_ref(m.name, version, refs, registry)
    else:
        version, image = deployment.version, deploy.environment_image(m.name, deployment, refs, registry)
    selector = {"app.kubernetes.io/name": m.name, "modelops/environment": env}
    labels = {"app.kubernetes.io/name": m.name, "app.kubernetes.io/version": version,
              "app.kubernetes.io/component": "model-server", "app.kubernetes.io/part-of": "modelops",
              "app.kubernetes.io/managed-by": "modelops", "modelops/environment": env}
    context = {"name": m.name, "env": env, "labels": labels, "selector": selector, "image": image,
               "command": deploy.command(env), "environment": deploy.environment(env, deployment), "port": PORT,
               "uid": UID, "scale": deployment.scale, "pre_stop_s": PRE_STOP_S,
               "termination_grace_s": TERMINATION_GRACE_S,
               "canary_percent": deployment.canary.weight if deployment.canary else None,
               "payload_dir": deploy.payload_dir(deployment), "rollout": None}
    if target == "deployment" and deployment.rollout is not None:
        context["rollout"] = rollouts.analysis(loaded, env, conf)
    header = f"{HEADER} from {loaded.display}: edit that file, not this one."
    kinds = [k for k in KINDS[target] if k != "horizontalpodautoscaler" or deployment.scale.autoscaling]
    kinds += list(ROLLOUT_KINDS) if context["rollout"] else []
    files = {f"{kind}.yaml": fill(root, kind, {**context, "header": header}) for kind in kinds}
    if deployment.batch:
        if len(m.name) > CRONJOB_NAME_MAX:
            raise ModelopsError(f"model name {m.name!r} is too long for a CronJob ({CRONJOB_NAME_MAX} characters "
                                "at most)", file=loaded.display, field=f"deployments.{env}.batch",
                                hint="shorten the model's name, or score it in batch outside Kubernetes")
        image = deploy.image_ref(m.name, deployment.version, refs, registry)  # the primary's own image
        files["cronjob.yaml"] = fill(root, "cronjob", {**context, "header": header, "image": image,
                                                       "batch": deployment.batch, "batch_scratch": BATCH_SCRATCH,
                                                       "batch_labels": _batch_labels(labels, env),
                                                       "batch_command": batch_command(deployment, env)})
    return files


def _batch_labels(labels: dict[str, str], env: str) -> dict[str, str]:
    """The labels of the batch pods: not the Deployment's selector (no modelops/environment), so that neither its
    Service nor its PodDisruptionBudget counts them."""
    return {**{k: v for k, v in labels.items() if k != "modelops/environment"},
            "app.kubernetes.io/component": "batch", "modelops/batch-environment": env}


def batch_command(deployment: Deployment, env: str) -> list[str]:
    """The batch pod's command, as a list of arguments (no shell): `python -m modelops score` of the
    environment's primary version (its image's model)."""
    batch = deployment.batch
    assert batch is not None
    command = ["python", "-m", "modelops", "score", "/model", "--version", deployment.version, "--env", env,
               "--input", batch.input, "--output", batch.output, "--no-progress"]
    if batch.rejects:
        command += ["--rejects", batch.rejects]
    for column in batch.keep:
        command += ["--keep", column]
    return command


def notes(loaded: LoadedManifest, env: str, target: str) -> list[str]:
    """What a target cannot express of a deployment (KServe has no shadow traffic, nor a payload folder, nor an
    analysis), and what a batch CronJob's image lacks for its URIs."""
    deployment = loaded.manifest.deployments[env]
    found = []
    if target == "kserve" and deployment.shadow:
        found.append(f"{loaded.display}: deployments.{env}.shadow: KServe mirrors no traffic, so "
                     f"{', '.join(deployment.shadow)} is not shadowed there (the deployment target does it)")
    if target == "kserve" and deploy.payload_dir(deployment):
        found.append(f"{loaded.display}: deployments.{env}.payloads.sink: a file sink needs a volume and "
                     "MODELOPS_PAYLOAD_DIR, which the InferenceService does not mount (an http sink, stdout or "
                     "the deployment target do)")
    if target == "kserve" and deployment.rollout:
        found.append(f"{loaded.display}: deployments.{env}.rollout: KServe gets no analysis; `modelops canary` "
                     "still moves canary.weight in git (the deployment target also renders Argo Rollouts)")
    if deployment.batch and (missing := _batch_packages_missing(loaded, deployment.batch)):
        found.append(f"{loaded.display}: deployments.{env}.batch: the image has no {', '.join(missing)}, which its "
                     "CronJob needs to read and write those URIs: pin them in the model's requirements file "
                     "(runner images install only the runner's and the model's requirements)")
    return found


# the packages (beside mlflow-skinny or mlflow) that MLflow's artifact clients need for each scheme
_STORE_PACKAGES = {"s3": ("boto3",), "gs": ("google-cloud-storage",),
                   "wasbs": ("azure-storage-blob", "azure-identity"),
                   "abfss": ("azure-storage-file-datalake", "azure-identity"), "http": (), "https": ()}


def _batch_packages_missing(loaded: LoadedManifest, batch: Batch) -> list[str]:
    """The packages the URIs of `batch` need that the model's requirements do not pin, in order."""
    from modelops.manifest.requirements import parse

    pinned = {pin.name for pin in parse(loaded, loaded.read("requirements"))[0]}
    needed = [] if pinned & {"mlflow", "mlflow-skinny"} else ["mlflow-skinny"]
    for uri in filter(None, (batch.input, batch.output, batch.rejects)):
        needed += [p for p in _STORE_PACKAGES[uri.split(":", 1)[0]] if p not in pinned and p not in needed]
    return needed
