"""What one environment serves: its version, a canary and its weight, the shadows; what promote writes and
history reads back from each commit."""

from __future__ import annotations

from dataclasses import dataclass

from modelops.manifest.model import Deployment


@dataclass(frozen=True)
class Serving:
    """The versions of one deployment: `version` answers, `canary` (version, weight %) takes a share of
    the traffic, each of `shadow` is mirrored."""

    version: str
    canary: tuple[str, int] | None = None
    shadow: tuple[str, ...] = ()

    @classmethod
    def of(cls, deployment: Deployment) -> Serving:
        canary = (deployment.canary.version, deployment.canary.weight) if deployment.canary else None
        return cls(deployment.version, canary, tuple(deployment.shadow))

    @classmethod
    def parse(cls, data: object) -> Serving:
        """From a deployment as plain data, as any commit's manifest holds it (other keys ignored); raises
        ValueError when it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise ValueError("no version")
        canary = data.get("canary")
        if canary is not None and not (isinstance(canary, dict) and isinstance(canary.get("version"), str)
                                       and type(canary.get("weight")) is int):
            raise ValueError("the canary is not {version, weight}")
        shadow = data.get("shadow") or []
        if not isinstance(shadow, list) or not all(isinstance(v, str) for v in shadow):
            raise ValueError("shadow is not a list of versions")
        return cls(data["version"], (canary["version"], canary["weight"]) if canary else None, tuple(shadow))

    def describe(self) -> str:
        """`1.0.0 + canary 1.1.0 (10 %) + shadow 1.2.0`."""
        text = self.version
        if self.canary:
            text += f" + canary {self.canary[0]} ({self.canary[1]} %)"
        if self.shadow:
            text += f" + shadow {', '.join(self.shadow)}"
        return text

    def to_json(self) -> dict:
        canary = {"version": self.canary[0], "weight": self.canary[1]} if self.canary else None
        return {"version": self.version, "canary": canary, "shadow": list(self.shadow)}
