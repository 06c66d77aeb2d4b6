"""Kubernetes objects of each model and environment, rendered from `templates/kubernetes/` (pure: no writes)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from modelops import templates
from modelops.errors import ModelopsError
from modelops.images import deploy
from modelops.images.context import PORT, UID
from modelops.manifest.loading import LoadedManifest

TARGETS = ("deployment", "kserve")
KINDS = {"deployment": ("deployment", "service", "horizontalpodautoscaler", "poddisruptionbudget"),
         "kserve": ("inferenceservice",)}
HEADER = "# Rendered by `modelops render`"
GITOPS = "gitops"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Pod shutdown: the preStop sleep keeps the pod serving while the endpoints drop it; then SIGTERM, and the
# runner drains within its grace; the kubelet kills only after both, plus a margin.
PRE_STOP_S = 5
TERMINATION_GRACE_S = PRE_STOP_S + deploy.SHUTDOWN_GRACE_S + 5


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
            registry: str, root: Path) -> dict[str, str]:
    """The files of one model in one environment: {file name: text}; images by tag when `refs` (from
    `--images`) is None. Pure: writes nothing."""
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
               "payload_dir": deploy.payload_dir(deployment)}
    header = f"{HEADER} from {loaded.display}: edit that file, not this one."
    kinds = [k for k in KINDS[target] if k != "horizontalpodautoscaler" or deployment.scale.autoscaling]
    return {f"{kind}.yaml": fill(root, kind, {**context, "header": header}) for kind in kinds}


def notes(loaded: LoadedManifest, env: str, target: str) -> list[str]:
    """What a target cannot express of a deployment (KServe has no shadow traffic, nor a payload folder)."""
    deployment = loaded.manifest.deployments[env]
    found = []
    if target == "kserve" and deployment.shadow:
        found.append(f"{loaded.display}: deployments.{env}.shadow: KServe mirrors no traffic, so "
                     f"{', '.join(deployment.shadow)} is not shadowed there (the deployment target does it)")
    if target == "kserve" and deploy.payload_dir(deployment):
        found.append(f"{loaded.display}: deployments.{env}.payloads.sink: a file sink needs a volume and "
                     "MODELOPS_PAYLOAD_DIR, which the InferenceService does not mount (an http sink, stdout or "
                     "the deployment target do)")
    return found
