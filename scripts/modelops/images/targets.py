"""Which runner images a model has: one per version, and one per set of versions that deployments route to."""

from __future__ import annotations

from dataclasses import dataclass

from modelops.errors import ModelopsError
from modelops.manifest.model import Deployment, Manifest


@dataclass(frozen=True)
class ImageTarget:
    """One image: a single version, or the versions that one or more deployments route to.

    A deployment image's tag is its versions joined by `_` (main, canary, shadows: `1.0.0_1.1.0_1.2.0`);
    it holds those environments' deployments and serves the first one unless MODELOPS_ENV says otherwise.
    """

    model: str
    versions: tuple[str, ...]     # every version the image serves, primary first
    envs: tuple[str, ...] = ()    # set for a deployment image

    @property
    def tag(self) -> str:
        return "_".join(self.versions)

    @property
    def primary(self) -> str:
        return self.versions[0]

    def serve_args(self) -> list[str]:
        return [] if self.envs else ["--version", self.primary]


def targets(m: Manifest, versions: tuple[str, ...] = (), envs: tuple[str, ...] = ()) -> list[ImageTarget]:
    """The images of a model: one per version, one per set of versions that deployments route to.

    With `versions` or `envs`, only those (an environment serving one version gets that version's image).
    """
    known = [v.version for v in m.versions]
    for number in versions:
        if number not in known:
            raise ModelopsError(f"{m.name} has no version {number}", hint=f"known versions are: {', '.join(known)}")
    for env in envs:
        if env not in m.deployments:
            raise ModelopsError(f"{m.name} has no deployment {env!r}",
                                hint=f"deployments are: {', '.join(m.deployments) or 'none'}")
    chosen: list[ImageTarget] = [ImageTarget(m.name, (v,)) for v in (versions or ([] if envs else known))]
    routed: dict[tuple[str, ...], list[str]] = {}
    for env, deployment in m.deployments.items():
        if (versions or envs) and env not in envs:
            continue
        routed.setdefault(served(deployment), []).append(env)
    for versions_served, names in routed.items():
        target = ImageTarget(m.name, versions_served, tuple(names) if len(versions_served) > 1 else ())
        if len(target.tag) > 110:
            raise ModelopsError(f"{m.name}: the image tag {target.tag!r} is too long",
                                hint="Docker tags hold 128 characters: route to fewer or shorter versions")
        if target not in chosen:
            chosen.append(target)
    return chosen


def served(deployment: Deployment) -> tuple[str, ...]:
    """The versions a deployment routes to, main first (canary, then shadows), each once: its image's key."""
    return tuple(dict.fromkeys([deployment.version, *([deployment.canary.version] if deployment.canary else []),
                                *deployment.shadow]))
