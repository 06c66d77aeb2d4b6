"""One Compose service per model and environment, rendered from `templates/compose/service.yaml.j2` (pure).

Every value that reaches the template is checked or computed here: names and versions by the manifest's
patterns, image references by IMAGE_RE, quantities converted; none can hold a `$`, which Compose would
interpolate, but the variables this module writes on purpose (`${MODELOPS_<MODEL>_PORT:?...}`).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import yaml

from modelops import templates
from modelops.errors import ModelopsError
from modelops.images import deploy
from modelops.images.context import HEALTHCHECK, PORT, UID
from modelops.manifest import quantity
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Scale
from modelops.settings import Settings

SECRET = "api-keys"  # the Compose secret holding the API keys, mounted at /run/secrets/<SECRET>
SECRET_FILE = "api-keys"  # the operator's file beside compose.yaml
HOST_IP = "${MODELOPS_HOST_IP:-0.0.0.0}"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UNITS = (("g", 2**30), ("m", 2**20), ("k", 2**10))
MIN_CPUS = Decimal("0.01")  # a smaller `cpus` fails at start: the kernel takes no CFS quota under 1 ms per 100 ms


def port_variable(name: str) -> str:
    """The variable (in the environment or `.env`) holding a model's host port: MODELOPS_<NAME>_PORT."""
    return f"MODELOPS_{name.upper().replace('-', '_')}_PORT"


def workers(scale: Scale) -> int:
    """The runner's worker processes in its one container: the replicas Kubernetes would start (autoscaling's
    minimum)."""
    return scale.autoscaling.min_replicas if scale.autoscaling else scale.replicas


def cpus(text: str, times: int) -> str:
    """A Kubernetes CPU quantity (`500m`) times `times`, as Compose's cores (`1`), at least MIN_CPUS."""
    return format(max(quantity.value(text) * times, MIN_CPUS).normalize(), "f")


def notes(loaded: LoadedManifest, env: str) -> list[str]:
    """What a Docker host cannot run as the manifest asks: a CPU limit below Docker's smallest (rounded up)."""
    scale = loaded.manifest.deployments[env].scale
    limit, count = scale.resources.limits.cpu, workers(scale)
    if quantity.value(limit) * count >= MIN_CPUS:
        return []
    return [f"{loaded.display}: deployments.{env}.scale.resources.limits.cpu: {limit} for {count} worker(s) is "
            f"below the smallest CPU limit Docker takes ({MIN_CPUS}), so the Compose service gets {MIN_CPUS}"]


def memory(text: str, times: int) -> str:
    """A Kubernetes memory quantity (`512Mi`) times `times`, as Compose's bytes (`1g`, `1536m`, `500000000b`)."""
    size = int(quantity.value(text) * times)
    for unit, factor in _UNITS:
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


def service(loaded: LoadedManifest, env: str, refs: dict[str, dict[str, str]] | None, conf: Settings,
            root: Path) -> str:
    """The service block of one model in one environment (two spaces in, no final newline); its first line (the
    template's comment) ends with the digest of the rest, `[sha256 <16 hex digits>]`, which `unchanged` checks."""
    m = loaded.manifest
    deployment = m.deployments[env]
    scale, count = deployment.scale, workers(deployment.scale)
    host_port = f"${{{port_variable(m.name)}:?set the host port of {m.name} in .env}}"
    environment = {**deploy.environment(env, deployment), "MODELOPS_WORKERS": str(count),
                   "MODELOPS_API_KEYS_FILE": f"/run/secrets/{SECRET}"}
    if conf.compose_network == "host":
        environment |= {"MODELOPS_HOST": HOST_IP, "PORT": host_port}
    summary = deployment.version + (f", canary {deployment.canary.version} at {deployment.canary.weight} %"
                                    if deployment.canary else "")
    summary += f", shadow {', '.join(deployment.shadow)}" if deployment.shadow else ""
    context = {
        "name": m.name, "summary": summary, "source": comment_text(loaded.display),
        "image": deploy.environment_image(m.name, deployment, refs, conf.image_registry),
        "command": deploy.command(env), "network": conf.compose_network, "host_ip": HOST_IP, "host_port": host_port,
        "port": PORT, "environment": environment, "secret": SECRET, "healthcheck": ["CMD", *HEALTHCHECK],
        "stop_grace_period": f"{deploy.SHUTDOWN_GRACE_S + 5}s", "uid": UID,
        "payload_dir": deploy.payload_dir(deployment),
        "cpus": cpus(scale.resources.limits.cpu, count), "memory": memory(scale.resources.limits.memory, count),
        "memory_reservation": memory(scale.resources.requests.memory, count),
        "labels": {"io.modelops.model": m.name, "io.modelops.environment": env,
                   "io.modelops.version": deployment.version},
    }
    text = templates.render("compose/service.yaml.j2", context, root, blocks=True).rstrip("\n")
    parsed = parse(text, "templates/compose/service.yaml.j2", f"one service ({m.name})")
    if not isinstance(parsed, dict) or list(parsed) != [m.name] or not isinstance(parsed[m.name], dict):
        raise ModelopsError(f"templates/compose/service.yaml.j2 did not render one service ({m.name})",
                            hint="check the template")
    first, body = text.split("\n", 1)
    return f"{first} [{_digest(body)}]\n{body}"


def unchanged(block: str) -> bool:
    """Whether a service block is as `service` wrote it: its first line ends with the digest of the rest."""
    first, _, body = block.partition("\n")
    return first.endswith(f" [{_digest(body)}]")


def _digest(body: str) -> str:
    return "sha256 " + hashlib.sha256(body.encode()).hexdigest()[:16]


def comment_text(text: str) -> str:
    """`text` for a YAML comment: as it is when every character is printable, else a JSON string (a line break
    or another control character in a folder's path would end the comment)."""
    return text if text.isprintable() else json.dumps(text)


def parse(text: str, template: str, what: str) -> object:
    """The YAML a template rendered, or an error naming the template."""
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ModelopsError(f"{template} did not render {what} that YAML reads: {exc}",
                            hint="check the template") from None
