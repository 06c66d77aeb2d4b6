"""`[tool.modelops.signing]`: who may sign (trusted keys, Sigstore identities) and which versions must be signed.

```toml
[tool.modelops.signing]
trusted_keys = ["keys/*.pub"]    # elliptic-curve public keys (PEM), globs relative to the repository
trusted_identities = [{identity = "https://github.com/org/models/.github/workflows/main.yml@refs/heads/main",
                       issuer = "https://token.actions.githubusercontent.com"}]   # Sigstore keyless signers
require = ["production"]         # "off" (default) | "all" | the environments whose versions must be signed
```
What is trusted is reviewed in git, like the models: no environment variable changes it. MODELOPS_SIGNING_REQUIRE
("all", or environments separated by commas) can only add to `require` (CI, or the demo, can demand more than
the repository, never less). A key pattern that names no file trusts nothing (a copy without keys/ still works).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.errors import ModelopsError

TABLE = "tool.modelops.signing"
ALL = "all"
SIGNATURE_DIR = "artifacts"  # a version's signature: <model folder>/artifacts/<version>.sig
IMAGE_KEYS = "trusted-keys"  # an image's model folder: the keys every version it serves must be signed by
IDENTITIES = "identities.json"  # in IMAGE_KEYS: the trusted Sigstore identities, [{identity, issuer}]
_KEYS = ("trusted_keys", "trusted_identities", "require")
REQUIRE_ENV = "MODELOPS_SIGNING_REQUIRE"


@dataclass(frozen=True)
class Identity:
    """A Sigstore keyless signer: the certificate's identity (an e-mail, a workflow URI) and its OIDC issuer."""

    identity: str
    issuer: str


@dataclass(frozen=True)
class Trust:
    """The trusted signers and the environments whose versions must be signed (ALL: every version)."""

    keys: tuple[Path, ...] = ()
    identities: tuple[Identity, ...] = ()
    require: tuple[str, ...] = ()
    source: str = "pyproject.toml"

    @property
    def signers(self) -> str:
        """The trusted signers, for messages."""
        names = [k.name for k in self.keys] + [i.identity for i in self.identities]
        return ", ".join(names) or "none"

    @property
    def require_text(self) -> str:
        """The policy as pyproject.toml spells it."""
        return "require = " + (f'"{ALL}"' if ALL in self.require else json.dumps(list(self.require)) if self.require
                               else '"off"')

    def required(self, versions: Iterable[str], deployments: Mapping[str, Any]) -> set[str]:
        """The versions that must be signed: all of them, or those that a required environment routes to
        (`deployments`: environment -> the manifest's Deployment, main, canary and shadows)."""
        if ALL in self.require:
            return set(versions)
        return {v for env in self.require if (d := deployments.get(env)) is not None
                for v in (d.version, d.canary.version if d.canary else None, *d.shadow) if v}

    def error(self, message: str, hint: str, key: str = "") -> ModelopsError:
        return ModelopsError(message, file=self.source, field=f"{TABLE}.{key}" if key else TABLE, hint=hint)


def signature_path(folder: Path, version: str) -> Path:
    """Where version `version`'s signature lives: beside its artifact folder, never inside it (signing a folder
    hashes every file in it, so a signature inside would change what it signs)."""
    return folder / SIGNATURE_DIR / f"{version}.sig"


def image_trust(folder: Path) -> Trust | None:
    """The trust an image's model folder carries (its `trusted-keys/`: every version must verify), or None."""
    keys = folder / IMAGE_KEYS
    if not keys.is_dir():
        return None
    identities = json.loads((keys / IDENTITIES).read_text()) if (keys / IDENTITIES).is_file() else []
    return Trust(keys=tuple(sorted(keys.glob("*.pub"))), identities=tuple(Identity(**i) for i in identities),
                 require=(ALL,), source=str(keys))


def load(root: Path, tool_table: dict[str, Any]) -> Trust:
    """The repository's trust, from `[tool.modelops.signing]` of `tool_table` (none: nothing required)."""
    table = tool_table.get("signing", {})
    where = Trust()
    if not isinstance(table, dict):
        raise where.error("is not a table", "write [tool.modelops.signing] with trusted_keys and require")
    for key in table:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            raise where.error(f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                              f"allowed keys are: {', '.join(_KEYS)}", key)
    require = _require(table.get("require", "off"), where)
    extra = os.environ.get(REQUIRE_ENV, "").strip()
    if extra:
        more = _require(ALL if extra == ALL else [e.strip() for e in extra.split(",") if e.strip()],
                        Trust(source=REQUIRE_ENV))
        require = (ALL,) if ALL in require + more else tuple(dict.fromkeys(require + more))
    trust = Trust(keys=_keys(root, table.get("trusted_keys", []), where),
                  identities=_identities(table.get("trusted_identities", []), where), require=require,
                  source=REQUIRE_ENV if extra else where.source)
    if trust.require and not (trust.keys or trust.identities):
        raise trust.error(f"{trust.require_text} but no signer is trusted", "name the public keys of the signers "
                          "in [tool.modelops.signing] trusted_keys (or Sigstore identities in trusted_identities)",
                          "require")
    return trust


def _keys(root: Path, patterns: object, where: Trust) -> tuple[Path, ...]:
    hint = 'list public key files of the repository, such as trusted_keys = ["keys/*.pub"]'
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise where.error("trusted_keys is not a list of file names", hint, "trusted_keys")
    found: list[Path] = []
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise where.error(f"{pattern!r} is outside the repository", hint, "trusted_keys")
        matches = sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())
        found += [p for p in matches if p not in found]
    return tuple(found)


def _identities(entries: object, where: Trust) -> tuple[Identity, ...]:
    hint = 'write trusted_identities = [{identity = "...", issuer = "https://..."}]'
    if not isinstance(entries, list):
        raise where.error("trusted_identities is not a list", hint, "trusted_identities")
    found = []
    for entry in entries:
        if not (isinstance(entry, dict) and set(entry) == {"identity", "issuer"}
                and all(isinstance(v, str) and v for v in entry.values())):
            raise where.error(f"{entry!r} is not {{identity = ..., issuer = ...}}", hint, "trusted_identities")
        found.append(Identity(entry["identity"], entry["issuer"]))
    return tuple(found)


def _require(value: object, where: Trust) -> tuple[str, ...]:
    hint = 'set require = "off", "all", or a list of environments such as ["production"]'
    if value == "off":
        return ()
    if value == ALL:
        return (ALL,)
    if isinstance(value, list) and all(isinstance(v, str) and v and v != ALL for v in value):
        return tuple(value)
    raise where.error(f"require = {value!r} is not valid", hint, "require")
