"""What every deploy target (Kubernetes, KServe, Compose) takes from a model's images: the reference of the
image an environment runs (by digest from `build --format json`, or by tag), and how the runner runs there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from modelops.errors import ModelopsError, Problem, dotted
from modelops.images.context import MODEL_DIR
from modelops.images.targets import served
from modelops.manifest.model import Deployment
from modelops.settings import IMAGE_RE

# From SIGTERM, the runner drains within this grace (MODELOPS_SHUTDOWN_GRACE_S); whatever stops it must wait
# at least as long before it kills.
SHUTDOWN_GRACE_S = 40  # the runner's default: more than its request timeout (30 s) and the closing
_DIGEST = r"^sha256:[0-9a-f]{64}$"
PAYLOAD_DIR = "/var/lib/modelops/payloads"  # where a file payload sink writes in a container (a volume there)


class _Image(BaseModel):
    """One image of `build --format json` output: the fields render reads (the others are ignored)."""

    model_config = ConfigDict(strict=True)
    model: str
    version: str
    ref: str
    digest: Annotated[str, StringConstraints(pattern=_DIGEST)] | None = None


class _Images(BaseModel):
    model_config = ConfigDict(strict=True)
    images: list[_Image]


def image_refs(path: Path) -> dict[str, dict[str, str]]:
    """{model: {version or image key: ref by digest}} from `build --format json` output."""
    hint = 'expected `modelops build --format json` output: {"images": [{"model", "version", "ref", "digest"}]}'
    try:
        images = _Images.model_validate_json(path.read_bytes()).images
    except ValidationError as exc:
        problems = [Problem(file=str(path), field=dotted(err["loc"]), message=_message(err), hint=hint)
                    for err in exc.errors()]
        raise ModelopsError(problems[0].message, file=str(path), problems=problems) from None
    refs: dict[str, dict[str, str]] = {}
    for image in images:
        ref = image.ref
        if image.digest and "@" not in ref:
            name, _, tag = ref.rpartition(":")
            ref = f"{name if name and '/' not in tag else ref}@{image.digest}"
        refs.setdefault(image.model, {})[image.version] = ref
    return refs


def _message(err: dict) -> str:
    value = err.get("input")
    shown = err["type"] != "missing" and not isinstance(value, dict | list | bytes)
    return err["msg"] + (f" (got {value!r})" if shown else "")


def image_ref(name: str, key: str, refs: dict[str, dict[str, str]] | None, registry: str) -> str:
    """`refs[name][key]` (a digest reference, from `build`); without `refs`, `<registry>/<name>:<key>`."""
    if refs is None:
        ref = f"{registry}/{name}:{key}"
    elif key in refs.get(name, {}):
        ref = refs[name][key]
    else:
        raise ModelopsError(f"--images holds no image of {name} with key {key}",
                            hint="build and push the images of every model first (modelops apply --build --push "
                                 "--images-out images.json), then render with that file")
    if not IMAGE_RE.fullmatch(ref):
        raise ModelopsError(f"image reference {ref!r} for {name} {key} is not valid",
                            hint="use registry/name@sha256:<64 hex> or registry/name:tag")
    return ref


def environment_image(name: str, deployment: Deployment, refs: dict[str, dict[str, str]] | None,
                      registry: str) -> str:
    """The image that serves a deployment: the one holding every version it routes to (main, canary, shadows)."""
    return image_ref(name, "_".join(served(deployment)), refs, registry)


def command(env: str) -> list[str]:
    """The runner's command in a deployment (runner images have no `modelops` script)."""
    return ["python", "-m", "modelops", "serve", MODEL_DIR, "--env", env]


def payload_dir(deployment: Deployment) -> str | None:
    """The folder a deployment's file payload sink writes in (a volume the target mounts); None without one."""
    return PAYLOAD_DIR if deployment.payloads is not None and deployment.payloads.to_file else None


def environment(env: str, deployment: Deployment) -> dict[str, str]:
    """The runner's environment variables in the deployment of `env`, whatever runs it."""
    folder = payload_dir(deployment)
    return {"MODELOPS_ENV": env, "MODELOPS_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
            **({"MODELOPS_PAYLOAD_DIR": folder} if folder else {})}
